package control

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/fanout/fanout/fastpath/route"
)

// peerLog records Config.Peers calls and the STUN answers' sends, in order.
type peerLog struct {
	mu     sync.Mutex
	srv    *Server
	events []string
	locked int // calls made while Server.mu was held
}

func (l *peerLog) add(ev string) {
	if l.srv != nil && !l.srv.mu.TryLock() {
		l.locked++
	} else if l.srv != nil {
		l.srv.mu.Unlock()
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *peerLog) Add(a netip.AddrPort)    { l.add("add " + a.String()) }
func (l *peerLog) Remove(a netip.AddrPort) { l.add("remove " + a.String()) }

func (l *peerLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// answerFastpath is fakeFastpath that logs the STUN answers it sends.
type answerFastpath struct {
	fakeFastpath
	log *peerLog
}

func (f *answerFastpath) WriteTo(_ []byte, to netip.AddrPort) error {
	f.log.add("answer " + to.String())
	return nil
}

var iceCreds = regexp.MustCompile(`a=ice-ufrag:(\S+)\r\na=ice-pwd:(\S+)`)

// TestPeersFollowSessions: Config.Peers hears each UDP address a verified
// binding brings (a NAT rebinding's too) before its STUN answer goes out,
// never a TCP peer, every address removed when the session ends, and
// never under Server.mu.
func TestPeersFollowSessions(t *testing.T) {
	log := &peerLog{}
	fp := &answerFastpath{fakeFastpath: fakeFastpath{up: make(chan route.Upcall)}, log: log}
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Peers: log}, fp)
	if err != nil {
		t.Fatal(err)
	}
	log.srv = s
	s.Start()
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { hs.Close(); s.Close() })

	m, loc := postForCreds(t, hs.URL+"/rtc/v1/whep/?app=live&stream=peers")
	a, b := netip.MustParseAddrPort("192.0.2.1:5000"), netip.MustParseAddrPort("192.0.2.1:5001")
	tcp := route.TCPPeer(netip.MustParseAddrPort("192.0.2.1:6000"))
	for _, from := range []netip.AddrPort{a, a, b, tcp} { // a twice: a known address is no news
		req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername(m[1]+":abcd"),
			stun.NewShortTermIntegrity(m[2]), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		fp.up <- route.Upcall{Kind: route.UpSTUN, From: from, Data: req.Raw}
		waitFor(t, func() bool { return strings.Contains(strings.Join(log.list(), ","), "answer "+from.String()) })
	}
	del, _ := http.NewRequest(http.MethodDelete, hs.URL+loc, nil)
	if r, err := http.DefaultClient.Do(del); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v", r, err)
	}
	waitFor(t, func() bool { return strings.Contains(strings.Join(log.list(), ","), "remove "+b.String()) })
	var peers []string
	first := map[string]int{}
	for i, ev := range log.list() {
		if !strings.HasPrefix(ev, "answer ") {
			peers = append(peers, ev)
		} else if _, ok := first[ev]; !ok {
			first[ev] = i
		}
	}
	want := []string{"add " + a.String(), "add " + b.String(), "remove " + a.String(), "remove " + b.String()}
	if strings.Join(peers, ",") != strings.Join(want, ",") {
		t.Errorf("peer calls %q, want %q", peers, want)
	}
	for _, from := range []netip.AddrPort{a, b} { // the client's DTLS follows the answer
		if i := slices.Index(log.list(), "add "+from.String()); i > first["answer "+from.String()] {
			t.Errorf("%v added after its STUN answer: %q", from, log.list())
		}
	}
	if log.locked != 0 {
		t.Errorf("%d calls under Server.mu", log.locked)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// sentFastpath is fakeFastpath that keeps what WriteTo sends.
type sentFastpath struct {
	fakeFastpath
	sent chan []byte
}

func (f *sentFastpath) WriteTo(b []byte, _ netip.AddrPort) error {
	f.sent <- append([]byte(nil), b...)
	return nil
}

// TestJoinBindingsEchoed: while a session joins (DTLS not done), each
// answer to a check is followed by a check of Fanout's own and both go out
// again echoDelay later; the answer to a nomination is echoed with no
// check; over TCP, past maxJoinAnswers, or once the keys are in, a binding
// is answered once.
func TestJoinBindingsEchoed(t *testing.T) {
	fp := &sentFastpath{fakeFastpath: fakeFastpath{up: make(chan route.Upcall)}, sent: make(chan []byte, 64)}
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, fp)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	mux := http.NewServeMux()
	s.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() { hs.Close(); s.Close() })
	m, _ := postForCreds(t, hs.URL+"/rtc/v1/whep/?app=live&stream=echo")

	udp, tcp := netip.MustParseAddrPort("192.0.2.1:5000"), route.TCPPeer(netip.MustParseAddrPort("192.0.2.1:6000"))
	type bindStep struct {
		from    netip.AddrPort
		useCand bool
		joined  bool   // DTLS done: keys installed
		want    string // R: answer, C: Fanout's check, in order sent
	}
	steps := []bindStep{{udp, false, false, "RCRC"}, {udp, true, false, "RR"}, {tcp, false, false, "R"}}
	for range maxJoinAnswers - 2 { // up to maxJoinAnswers UDP answers are echoed, then none
		steps = append(steps, bindStep{udp, false, false, "RCRC"})
	}
	steps = append(steps, bindStep{udp, false, false, "R"}, bindStep{udp, false, true, "R"})
	for _, step := range steps {
		if step.joined {
			s.mu.Lock()
			s.byUfrag[m[1]].keys = &route.Keys{}
			s.mu.Unlock()
		}
		setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(m[1] + ":abcd")}
		if step.useCand {
			setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
		}
		req, err := stun.Build(append(setters, stun.NewShortTermIntegrity(m[2]), stun.Fingerprint)...)
		if err != nil {
			t.Fatal(err)
		}
		fp.up <- route.Upcall{Kind: route.UpSTUN, From: step.from, Data: req.Raw}
		var got strings.Builder
		for timeout := time.After(10 * echoDelay); ; {
			select {
			case b := <-fp.sent:
				if !stun.IsMessage(b) {
					continue // DTLS, if Fanout is the client
				}
				var msg stun.Message
				if err := stun.Decode(b, &msg); err != nil {
					t.Fatal(err)
				}
				if msg.Type.Class == stun.ClassRequest {
					got.WriteByte('C')
				} else {
					got.WriteByte('R')
				}
				continue
			case <-timeout:
			}
			break
		}
		if got.String() != step.want {
			t.Errorf("binding from %v (USE-CANDIDATE %v, joined %v): sent %q, want %q", step.from, step.useCand, step.joined, got.String(), step.want)
		}
	}
}

// postForCreds POSTs a WHEP offer and returns the answer's ice-ufrag and
// ice-pwd (m[1], m[2]) and the session's Location.
func postForCreds(t *testing.T, url string) (m []string, location string) {
	t.Helper()
	resp, err := http.Post(url, "application/sdp", strings.NewReader(opusOffer("recvonly")))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m = iceCreds.FindStringSubmatch(string(answer))
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("%d %s", resp.StatusCode, answer)
	}
	return m, resp.Header.Get("Location")
}
