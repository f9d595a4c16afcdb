package node

// The interop harness: outside WebRTC stacks (GStreamer's webrtcbin through
// simple-whip-client, aiortc, Firefox ESR; testdata/clients/README.md) run
// as processes inside a netns pair's namespace A against a Fanout in B
// (libnice and aioice ignore loopback), and a pion player child. Players
// record every RTP packet's sequence number and payload digest, so two
// players of one stream, on different stacks, are compared byte for byte.

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

const clientsPython = "/usr/bin/python3" // Debian's, where python3-aiortc is installed

// clientsDir is testdata/clients as an absolute path (children run elsewhere).
func clientsDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("testdata", "clients"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// requireWhipClient builds simple-whip-client (cached) and returns its path.
func requireWhipClient(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(clientsDir(t), "build-whip-client.sh")).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && (ee.ExitCode() == 3 || ee.ExitCode() == 4) {
		t.Skipf("simple-whip-client cannot be built (GStreamer dev packages from .ci/deps.sh test, or shared/clients): %s", ee.Stderr)
	}
	if err != nil {
		t.Fatalf("build-whip-client.sh: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// requireAiortc skips unless Debian's python3-aiortc imports.
func requireAiortc(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(clientsPython, "-c", "import aiortc, av").CombinedOutput(); err != nil {
		t.Skipf("python3-aiortc not installed (.ci/deps.sh test): %v: %s", err, out)
	}
}

// startAiortc runs testdata/clients/aiortc_client.py in ns (its doc has the modes).
func (p *netnsPair) startAiortc(t *testing.T, name string, args ...string) *netnsChild {
	t.Helper()
	argv := append([]string{clientsPython, "-u", filepath.Join(clientsDir(t), "aiortc_client.py")}, args...)
	return p.spawn(t, p.A, name, nil, argv...)
}

// waitLine waits up to d for a line of c's output containing s.
func (c *netnsChild) waitLine(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		for _, l := range c.out {
			if strings.Contains(l, s) {
				c.mu.Unlock()
				return true
			}
		}
		c.mu.Unlock()
		select {
		case <-c.done:
			return false
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exited waits up to d for a tool to exit and returns its exit error.
func (c *netnsChild) exited(d time.Duration) error {
	select {
	case <-c.done:
	case <-time.After(d):
		return fmt.Errorf("%s: still running after %v", c.name, d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("%s: %v", c.name, c.err)
	}
	return nil
}

// nsGetJSON fetches url from inside namespace ns and decodes it into v.
func (p *netnsPair) nsGetJSON(ns, url string, v any) error {
	out, err := p.Run(ns, "curl", "-sSf", "--max-time", "5", url)
	if err != nil {
		return fmt.Errorf("GET %s: %v: %s", url, err, out)
	}
	return json.Unmarshal([]byte(out), v)
}

// apiClient is the part of an /api/v1/clients entry the tests read.
type apiClient struct {
	ID      string `json:"id"`
	Stream  string `json:"name"` // the stream's name ("stream" is its id)
	Publish bool   `json:"publish"`
	Quality struct {
		Tracks []struct {
			Packets uint64 `json:"packets"`
			Lost    int64  `json:"lost"`
		} `json:"tracks"`
		NACKs    uint64 `json:"nacks"`
		PLIs     uint64 `json:"plis"`
		Replayed uint64 `json:"gop_replayed_packets"`
		JoinGOP  uint64 `json:"gop_join_packets"`
		JoinGOPB uint64 `json:"gop_join_bytes"`
	} `json:"quality"`
}

// clients lists Fanout's sessions, seen from namespace A.
func (p *netnsPair) clients(t testing.TB, api string) []apiClient {
	t.Helper()
	var r struct {
		Clients []apiClient `json:"clients"`
	}
	if err := p.nsGetJSON(p.A, api+"/api/v1/clients/?count=1000", &r); err != nil {
		t.Fatal(err)
	}
	return r.Clients
}

// publisherOf returns stream's publisher session, if there is one.
func publisherOf(cs []apiClient, stream string) (apiClient, bool) {
	for _, c := range cs {
		if c.Publish && c.Stream == stream {
			return c, true
		}
	}
	return apiClient{}, false
}

// waitPublisher polls until stream has a publisher (or d passes).
func (p *netnsPair) waitPublisher(t testing.TB, api, stream string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if _, ok := publisherOf(p.clients(t, api), stream); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s has no publisher after %v", stream, d)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// clientRecv is what a player wrote: per kind, [sequence number, payload
// digest] in arrival order, decoded frames, and how long before the file
// was written the last packet came.
type clientRecv struct {
	Packets  map[string][][2]any `json:"packets"`
	Frames   map[string]int      `json:"frames"`
	LastAgeM int                 `json:"last_packet_age_ms"`
	// VideoRTP (pion players): each video packet's sequence number, RTP
	// timestamp and payload size, in arrival order.
	VideoRTP [][3]int64 `json:"video_rtp,omitempty"`
}

func readClientRecv(t testing.TB, path string) clientRecv {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r clientRecv
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return r
}

// ordered is a kind's payload digests in sequence-number order (unwrapped,
// duplicates and resends merged): the stream as the player holds it.
func (r clientRecv) ordered(kind string) []string {
	type pkt struct {
		seq int64
		sum string
	}
	var pkts []pkt
	seen := map[int64]bool{}
	var ext int64 = -1
	for _, e := range r.Packets[kind] {
		seq := int64(e[0].(float64))
		if ext < 0 {
			ext = seq
		} else {
			// The extension closest to the previous packet.
			ext += int64(int16(uint16(seq) - uint16(ext)))
		}
		if !seen[ext] {
			seen[ext] = true
			pkts = append(pkts, pkt{ext, e[1].(string)})
		}
	}
	slices.SortStableFunc(pkts, func(a, b pkt) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]string, len(pkts))
	for i, p := range pkts {
		out[i] = p.sum
	}
	return out
}

// compareStreams checks that two players of one stream received the same
// payloads in the same order over the span both were playing, and returns
// that span's length. Each player's own sequence numbers give its order.
// Some payloads repeat (H.264 parameter sets before every IDR), so the
// later player's first packet is matched where the longest run agrees.
func compareStreams(a, b []string) (overlap int, err error) {
	if len(a) == 0 || len(b) == 0 {
		return 0, fmt.Errorf("empty: %d and %d packets", len(a), len(b))
	}
	run := func(x, y []string) int {
		n := 0
		for n < len(x) && n < len(y) && x[n] == y[n] {
			n++
		}
		return n
	}
	best, bestEnd := 0, 0 // the longest run, and the length it had to cover
	for _, pair := range [][2][]string{{a, b}, {b, a}} {
		x, y := pair[0], pair[1]
		for i, s := range x {
			if s != y[0] {
				continue
			}
			if n := run(x[i:], y); n > best {
				best, bestEnd = n, min(len(x)-i, len(y))
			}
		}
	}
	if best == 0 {
		return 0, errors.New("no packet in common at either start")
	}
	if best < bestEnd {
		return best, fmt.Errorf("payloads differ after %d packets in common (of %d both played)", best, bestEnd)
	}
	return best, nil
}

// ---- the pion player child ----

// startPionPlayer plays url for seconds from namespace A in a child and
// returns it and the file it writes (clientRecv's shape).
func (p *netnsPair) startPionPlayer(t *testing.T, url string, seconds int) (*netnsChild, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "pion.json")
	c := p.startChild(t, p.A, "TestClientsPionPlayerChild", "FANOUT_NETNS_IP="+p.IPA.String(),
		"CLIENTS_URL="+url, "CLIENTS_SECONDS="+strconv.Itoa(seconds), "CLIENTS_OUT="+out)
	return c, out
}

// TestClientsPionPlayerChild plays CLIENTS_URL by WHEP for CLIENTS_SECONDS
// and writes every packet's sequence number and payload digest, and the
// keyframes it saw, to CLIENTS_OUT.
func TestClientsPionPlayerChild(t *testing.T) {
	skipUnlessNetnsChild(t)
	seconds, _ := strconv.Atoi(netnsEnv(t, "CLIENTS_SECONDS"))
	pc := netnsPeer(t, netip.MustParseAddr(netnsEnv(t, "FANOUT_NETNS_IP")))
	addRecvonly(t, pc)
	var mu sync.Mutex
	rec := clientRecv{Packets: map[string][][2]any{"audio": {}, "video": {}}, Frames: map[string]int{}}
	var last time.Time
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		kind, mime := tr.Kind().String(), tr.Codec().MimeType
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			sum := sha256.Sum256(pkt.Payload)
			mu.Lock()
			rec.Packets[kind] = append(rec.Packets[kind], [2]any{float64(pkt.SequenceNumber), hex.EncodeToString(sum[:8])})
			if kind == "video" {
				rec.VideoRTP = append(rec.VideoRTP, [3]int64{int64(pkt.SequenceNumber), int64(pkt.Timestamp), int64(len(pkt.Payload))})
				if keyframeStart(mime, pkt.Payload) {
					rec.Frames["video_keyframes"]++
				}
			}
			last = time.Now()
			mu.Unlock()
		}
	})
	exchange(t, pc, netnsEnv(t, "CLIENTS_URL"))
	waitConnected(t, pc, 15*time.Second)
	netnsResult("connected", true)
	time.Sleep(time.Duration(seconds) * time.Second)
	mu.Lock()
	rec.LastAgeM = int(time.Since(last).Milliseconds())
	b, err := json.Marshal(rec)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(netnsEnv(t, "CLIENTS_OUT"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	_ = pc.Close()
}

// keyframeStart reports whether an RTP payload starts a keyframe: an H.264
// IDR (single NAL, STAP-A or the first FU-A fragment) or the first packet
// of a VP8 key frame (RFC 7741 §4.3: S=1, PID=0, and P=0 in the header).
func keyframeStart(mime string, p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch strings.ToLower(mime) {
	case "video/h264":
		switch t := p[0] & 0x1f; t {
		case 5:
			return true
		case 24: // STAP-A: NAL units with 2-byte sizes
			for i := 1; i+2 < len(p); {
				n := int(p[i])<<8 | int(p[i+1])
				if p[i+2]&0x1f == 5 {
					return true
				}
				i += 2 + n
			}
		case 28: // FU-A
			return p[1]&0x80 != 0 && p[1]&0x1f == 5
		}
	case "video/vp8":
		if p[0]&0x10 == 0 || p[0]&0x07 != 0 {
			return false
		}
		i := 1
		if p[0]&0x80 != 0 { // X
			x := p[1]
			i++
			if x&0x80 != 0 { // I
				if i < len(p) && p[i]&0x80 != 0 {
					i++
				}
				i++
			}
			if x&0x40 != 0 { // L
				i++
			}
			if x&0x30 != 0 { // T or K
				i++
			}
		}
		return i < len(p) && p[i]&0x01 == 0
	}
	return false
}
