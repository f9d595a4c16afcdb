package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/fanout/fanout/control"
	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// Upstream timeouts.
const (
	dialTimeout    = 5 * time.Second // WHEP exchange plus ICE and DTLS
	deleteTimeout  = 2 * time.Second
	iceDisconnect  = 2 * time.Second
	iceFailed      = 4 * time.Second
	iceKeepalive   = 500 * time.Millisecond
	maxAnswerBytes = 64 << 10
)

// ErrRefused: the owner's WHEP endpoint answered other than 201.
var ErrRefused = errors.New("owner refused the WHEP pull")

// newAPI builds the pion stack the upstreams share: every default codec
// offered (the owner answers with its publisher's), the default
// interceptors (NACK generator, receiver reports), fast ICE failure.
func newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	se.SetICETimeouts(iceDisconnect, iceFailed, iceKeepalive)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// upstream is one WHEP pull from an owner into one virtual publisher.
type upstream struct {
	r        *relay
	owner    string
	pc       *webrtc.PeerConnection
	location string // the owner's WHEP session resource, for DELETE
	via      string // the base URL that answered: the owner, or the node it redirected to
	vp       *control.VirtualPublisher
	sid      atomic.Uint32 // vp's session once registered
	videoSSR uint32        // the owner's video SSRC, for PLIs

	lost     chan struct{} // closed when ICE/DTLS failed or closed
	lostOnce sync.Once
	mu       sync.Mutex // guards closed and readers.Add
	closed   bool
	readers  sync.WaitGroup
}

// dial pulls r's stream from owner: WHEP exchange, virtual publisher, ICE
// and DTLS connected. On error everything it opened is closed.
func (r *relay) dial(owner string) (*upstream, error) {
	pc, err := r.m.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	up := &upstream{r: r, owner: owner, pc: pc, lost: make(chan struct{})}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() { close(connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			up.lostOnce.Do(func() { close(up.lost) })
		}
	})
	pc.OnTrack(up.read)
	if err := up.exchange(); err != nil {
		up.close()
		return nil, err
	}
	select {
	case <-connected:
		return up, nil
	case <-up.lost:
		err = errors.New("upstream ICE/DTLS failed")
	case <-time.After(dialTimeout):
		err = errors.New("upstream ICE/DTLS timed out")
	case <-r.stop:
		err = ErrClosed
	}
	up.close()
	return nil, err
}

// exchange runs the WHEP offer/answer and registers the virtual publisher.
func (up *upstream) exchange() error {
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := up.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	offer, err := up.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(up.pc)
	if err := up.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-time.After(dialTimeout):
		return errors.New("ICE gathering timed out")
	}
	answer, err := up.post(up.pc.LocalDescription().SDP)
	if err != nil {
		return err
	}
	if err := up.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("upstream answer: %w", err)
	}
	audio, video, err := tracksOf(answer)
	if err != nil {
		return err
	}
	if video != nil {
		up.videoSSR = video.SSRC
	}
	k := up.r.key
	// A retiring relay's publisher may still be closing: wait a little.
	for try := 0; ; try++ {
		up.vp, err = up.r.m.cfg.Host.OpenVirtual(k.vhost, k.app, k.stream, audio, video)
		if err == nil {
			break
		}
		if !errors.Is(err, control.ErrStreamBusy) || try == 20 {
			return fmt.Errorf("relay publisher: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	up.sid.Store(uint32(up.vp.Session()))
	return nil
}

// redirecting follows a full owner's 307 to another node of the cluster,
// keeping the bearer token (one per cluster), which net/http drops on a
// redirect to another host.
var redirecting = &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("upstream whep: too many redirects")
	}
	if a := via[0].Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	return nil
}}

// post sends the offer to the owner's WHEP endpoint and returns the answer.
func (up *upstream) post(offer string) (string, error) {
	k := up.r.key
	u := strings.TrimRight(up.owner, "/") + "/rtc/v1/whep/?" +
		url.Values{"vhost": {k.vhost}, "app": {k.app}, "stream": {k.stream}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if id := up.r.m.cfg.NodeID; id != "" {
		req.Header.Set(HeaderFrom, id)
	}
	if t := up.r.m.cfg.BearerToken; t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
	resp, err := redirecting.Do(req)
	if err != nil {
		return "", fmt.Errorf("upstream whep: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return "", fmt.Errorf("upstream whep: %w", err)
	}
	if resp.StatusCode != http.StatusCreated {
		up.r.m.cnt.refused.Add(1)
		return "", fmt.Errorf("%w: %d %s", ErrRefused, resp.StatusCode, bytes.TrimSpace(body))
	}
	// Relative to where the answer came from (a full owner may redirect).
	up.via = (&url.URL{Scheme: resp.Request.URL.Scheme, Host: resp.Request.URL.Host}).String()
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil && loc.String() != "" {
		up.location = resp.Request.URL.ResolveReference(loc).String()
	}
	return string(body), nil
}

// read is the OnTrack handler: it copies the track's RTP (decrypted by
// pion) into the local fastpath until the connection closes.
func (up *upstream) read(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	up.mu.Lock()
	if up.closed {
		up.mu.Unlock()
		return
	}
	up.readers.Add(1)
	up.mu.Unlock()
	defer up.readers.Done()
	host, cnt, r := up.r.m.cfg.Host, &up.r.m.cnt, up.r
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		sid := route.SessionID(up.sid.Load())
		if sid == 0 || n < 12 {
			continue
		}
		cnt.packets.Add(1)
		cnt.bytes.Add(uint64(n))
		r.packets.Add(1)
		r.bytes.Add(uint64(n))
		if !host.Inject(sid, buf[:n]) {
			cnt.dropped.Add(1)
		}
	}
}

// pli asks the owner for a keyframe (RFC 4585 §6.3.1).
func (up *upstream) pli() {
	if up.videoSSR == 0 {
		return
	}
	if err := up.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: up.videoSSR}}); err == nil {
		up.r.m.cnt.plis.Add(1)
	}
}

// close ends the pull: the peer connection, its readers, the owner's
// WHEP session (DELETE, best effort) and the virtual publisher, whose
// local players wait for the next one.
func (up *upstream) close() {
	up.mu.Lock()
	up.closed = true
	up.mu.Unlock()
	_ = up.pc.Close()
	up.readers.Wait()
	if up.location != "" {
		ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
		if req, err := http.NewRequestWithContext(ctx, http.MethodDelete, up.location, nil); err == nil {
			if t := up.r.m.cfg.BearerToken; t != "" {
				req.Header.Set("Authorization", "Bearer "+t)
			}
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_ = resp.Body.Close()
			}
		}
		cancel()
	}
	if up.vp != nil {
		up.vp.Close()
	}
}

// tracksOf reads the accepted tracks of the owner's answer: the payload
// type it chose per m-line, that codec's rtpmap and fmtp, and its SSRC.
func tracksOf(answer string) (audio, video *control.VirtualTrack, err error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return nil, nil, fmt.Errorf("upstream answer: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 || len(md.MediaName.Formats) == 0 {
			continue
		}
		tr := trackOf(md)
		if tr == nil {
			continue
		}
		switch md.MediaName.Media {
		case "audio":
			audio = tr
		case "video":
			video = tr
		}
	}
	if audio == nil && video == nil {
		return nil, nil, ErrNoMedia
	}
	return audio, video, nil
}

// trackOf reads one m-line's track, nil without rtpmap or SSRC.
func trackOf(md *sdp.MediaDescription) *control.VirtualTrack {
	pt := md.MediaName.Formats[0]
	ptn, err := strconv.ParseUint(pt, 10, 7)
	if err != nil {
		return nil
	}
	tr := &control.VirtualTrack{Codec: sdpneg.Codec{PT: uint8(ptn)}}
	for _, a := range md.Attributes {
		switch a.Key {
		case "rtpmap":
			if v, ok := strings.CutPrefix(a.Value, pt+" "); ok {
				parseRTPMap(&tr.Codec, v)
			}
		case "fmtp":
			if v, ok := strings.CutPrefix(a.Value, pt+" "); ok {
				tr.Codec.Fmtp = v
			}
		case "ssrc":
			if tr.SSRC == 0 {
				id, _, _ := strings.Cut(a.Value, " ")
				n, _ := strconv.ParseUint(id, 10, 32)
				tr.SSRC = uint32(n)
			}
		}
	}
	if tr.Codec.Name == "" || tr.SSRC == 0 {
		return nil
	}
	return tr
}

// parseRTPMap reads "name/clock[/channels]" with sdpneg's canonical name.
func parseRTPMap(c *sdpneg.Codec, v string) {
	parts := strings.Split(v, "/")
	for _, n := range []string{sdpneg.CodecOpus, sdpneg.CodecH264, sdpneg.CodecH265, sdpneg.CodecVP8,
		sdpneg.CodecVP9, sdpneg.CodecAV1, sdpneg.CodecPCMU, sdpneg.CodecPCMA} {
		if strings.EqualFold(parts[0], n) {
			c.Name = n
		}
	}
	if len(parts) > 1 {
		n, _ := strconv.ParseUint(parts[1], 10, 32)
		c.ClockRate = uint32(n)
	}
	if len(parts) > 2 {
		n, _ := strconv.ParseUint(parts[2], 10, 16)
		c.Channels = uint16(n)
	}
}
