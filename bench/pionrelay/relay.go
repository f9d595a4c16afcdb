// Package pionrelay owns a minimal WHIP/WHEP relay built on pion/webrtc v4:
// one published stream (H.264 + Opus) fanned out to every WHEP player
// through TrackLocalStaticRTP, on one UDP port (ice.NewUDPMuxDefault),
// ICE-lite, answering after gathering completes. It is the second
// implementation fanout-bench measures (proving the tool is
// server-agnostic) and the server of the bench's own tests.
//
// Concurrency: a Relay is safe for concurrent use; Close stops every
// goroutine and PeerConnection it started.
package pionrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// ErrBadOffer is returned for an offer pion cannot answer.
var ErrBadOffer = errors.New("bad offer")

// Relay is a running relay.
type Relay struct {
	api   *webrtc.API
	udp   net.PacketConn
	mux   *ice.UDPMuxDefault
	http  *http.Server
	ln    net.Listener
	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	mu       sync.Mutex
	sessions map[string]*webrtc.PeerConnection
	pub      *webrtc.PeerConnection
	pubSSRC  webrtc.SSRC
	nextID   int
	wg       sync.WaitGroup
}

// Start listens for HTTP on httpAddr and for media on udpAddr (both
// "127.0.0.1:0" style) and serves /whip, /whep and /resource/ID.
func Start(httpAddr, udpAddr string) (*Relay, error) {
	udp, err := net.ListenPacket("udp4", udpAddr)
	if err != nil {
		return nil, fmt.Errorf("relay udp: %w", err)
	}
	r := &Relay{udp: udp, sessions: map[string]*webrtc.PeerConnection{}}
	r.mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: udp})
	se := webrtc.SettingEngine{}
	se.SetICEUDPMux(r.mux)
	se.SetLite(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if host, _, _ := net.SplitHostPort(udp.LocalAddr().String()); host != "0.0.0.0" {
		ip := net.ParseIP(host)
		se.SetIPFilter(func(c net.IP) bool { return c.Equal(ip) })
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		udp.Close()
		return nil, fmt.Errorf("relay codecs: %w", err)
	}
	r.api = webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me))
	r.video, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "video", "relay")
	r.audio, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000,
		Channels: 2}, "audio", "relay")
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		r.mux.Close()
		udp.Close()
		return nil, fmt.Errorf("relay http: %w", err)
	}
	r.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip", r.handleWHIP)
	mux.HandleFunc("POST /whep", r.handleWHEP)
	mux.HandleFunc("DELETE /resource/{id}", r.handleDelete)
	r.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = r.http.Serve(ln)
	}()
	return r, nil
}

// URL returns the base URL, e.g. http://127.0.0.1:PORT.
func (r *Relay) URL() string { return "http://" + r.ln.Addr().String() }

// UDPAddr returns the media address.
func (r *Relay) UDPAddr() net.Addr { return r.udp.LocalAddr() }

// Sessions returns the number of live PeerConnections.
func (r *Relay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Close shuts the HTTP server, every PeerConnection and the UDP port.
func (r *Relay) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.http.Shutdown(ctx)
	r.mu.Lock()
	pcs := make([]*webrtc.PeerConnection, 0, len(r.sessions))
	for _, pc := range r.sessions {
		pcs = append(pcs, pc)
	}
	r.sessions = map[string]*webrtc.PeerConnection{}
	r.mu.Unlock()
	for _, pc := range pcs {
		_ = pc.Close()
	}
	r.wg.Wait()
	_ = r.mux.Close()
	_ = r.udp.Close()
	return nil
}

func (r *Relay) handleWHIP(w http.ResponseWriter, req *http.Request) {
	r.answer(w, req, func(pc *webrtc.PeerConnection) error {
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			dst := r.audio
			if t.Kind() == webrtc.RTPCodecTypeVideo {
				dst = r.video
				r.mu.Lock()
				r.pub, r.pubSSRC = pc, t.SSRC()
				r.mu.Unlock()
			}
			forward(t, dst)
		})
		return nil
	})
}

// forward copies the publisher's RTP into the fan-out track until it ends.
func forward(t *webrtc.TrackRemote, dst *webrtc.TrackLocalStaticRTP) {
	buf := make([]byte, 1600)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if _, err := dst.Write(buf[:n]); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
	}
}

func (r *Relay) handleWHEP(w http.ResponseWriter, req *http.Request) {
	r.answer(w, req, func(pc *webrtc.PeerConnection) error {
		for _, t := range []*webrtc.TrackLocalStaticRTP{r.audio, r.video} {
			s, err := pc.AddTrack(t)
			if err != nil {
				return err
			}
			r.wg.Add(1)
			go r.readRTCP(s)
		}
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			if s == webrtc.PeerConnectionStateConnected {
				r.requestKeyframe()
			}
		})
		return nil
	})
}

// readRTCP drains a player's RTCP and passes PLI/FIR on to the publisher.
func (r *Relay) readRTCP(s *webrtc.RTPSender) {
	defer r.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				r.requestKeyframe()
			}
		}
	}
}

func (r *Relay) requestKeyframe() {
	r.mu.Lock()
	pub, ssrc := r.pub, r.pubSSRC
	r.mu.Unlock()
	if pub != nil {
		_ = pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
	}
}

// answer runs the common WHIP/WHEP exchange (RFC 9725 §4.2): one
// PeerConnection per POST, answer after ICE gathering, 201 + Location.
func (r *Relay) answer(w http.ResponseWriter, req *http.Request, setup func(*webrtc.PeerConnection) error) {
	offer, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/sdp") {
		http.Error(w, "expected application/sdp offer", http.StatusUnsupportedMediaType)
		return
	}
	pc, err := r.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ans, err := negotiate(pc, string(offer), setup)
	if err != nil {
		_ = pc.Close()
		http.Error(w, fmt.Sprintf("%v: %v", ErrBadOffer, err), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.nextID++
	id := strconv.Itoa(r.nextID)
	r.sessions[id] = pc
	r.mu.Unlock()
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateFailed || s == webrtc.ICEConnectionStateDisconnected {
			r.drop(id)
		}
	})
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/resource/"+id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, ans)
}

func negotiate(pc *webrtc.PeerConnection, offer string, setup func(*webrtc.PeerConnection) error) (string, error) {
	if err := setup(pc); err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-done
	return pc.LocalDescription().SDP, nil
}

func (r *Relay) drop(id string) {
	r.mu.Lock()
	pc := r.sessions[id]
	delete(r.sessions, id)
	if pc != nil && pc == r.pub {
		r.pub = nil
	}
	r.mu.Unlock()
	if pc != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			_ = pc.Close()
		}()
	}
}

func (r *Relay) handleDelete(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	r.mu.Lock()
	_, ok := r.sessions[id]
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.drop(id)
	w.WriteHeader(http.StatusOK)
}
