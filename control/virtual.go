package control

import (
	"errors"
	"fmt"

	"github.com/fanout/fanout/control/sdpneg"
	"github.com/fanout/fanout/fastpath/route"
)

// ErrNoTracks is returned by OpenVirtual without a track.
var ErrNoTracks = errors.New("virtual publisher without tracks")

// Events receives publisher lifecycle events (cmd wires rtc_to_rtmp here).
// Calls are made outside Server.mu, from the goroutine that caused them
// (the session's DTLS goroutine, the sweeper, an HTTP handler, Close); they
// should return quickly. For one session PublisherGone follows
// PublisherReady and is only sent if PublisherReady was.
type Events interface {
	// PublisherReady: a WebRTC publisher's DTLS handshake completed and
	// its media now flows through the fastpath.
	PublisherReady(PublisherInfo)
	// PublisherGone: that publisher's session ended.
	PublisherGone(PublisherInfo)
}

// PublisherInfo describes a WebRTC publisher for Events.
type PublisherInfo struct {
	Session route.SessionID
	Epoch   uint32 // the route table epoch its media carries
	Vhost   string
	App     string
	Stream  string
	Audio   *sdpneg.Codec // negotiated codec, nil without the track
	Video   *sdpneg.Codec
}

// VirtualTrack is one track of a virtual publisher: the codec players
// negotiate against and the SSRC its packets carry.
type VirtualTrack struct {
	Codec sdpneg.Codec
	SSRC  uint32
}

// VirtualPublisher is a publisher session without ICE, DTLS or a peer
// (rtmp_to_rtc): its plaintext RTP goes into the fastpath through
// fastpath.Engine.Inject with Session(). WHEP players negotiate against its
// codecs, and the API lists it, like any publisher.
type VirtualPublisher struct {
	srv *Server
	ss  *session
}

// OpenVirtual registers a virtual publisher of vhost/app/stream. It fails
// with ErrStreamBusy when the stream already has a publisher.
func (s *Server) OpenVirtual(vhost, app, stream string, audio, video *VirtualTrack) (*VirtualPublisher, error) {
	if audio == nil && video == nil {
		return nil, ErrNoTracks
	}
	v, err := s.openVirtual(vhost, app, stream, audio, video)
	if err == nil {
		v.ss.log.Info("virtual publisher", "audio", v.ss.codecs[route.KindAudio], "video", v.ss.codecs[route.KindVideo])
	}
	return v, err
}

// openVirtual registers the virtual publisher's session.
func (s *Server) openVirtual(vhost, app, stream string, audio, video *VirtualTrack) (*VirtualPublisher, error) {
	s.mu.Lock()
	defer s.unlock()
	if s.closing || s.draining {
		return nil, ErrDraining
	}
	st := s.streamLocked(vhost, app, stream)
	if st.publisher != nil {
		return nil, fmt.Errorf("%w: %s", ErrStreamBusy, st.key)
	}
	ss := s.newSessionLocked(route.RolePublisher, st, "", "", "rtmp")
	delete(s.byUfrag, ss.localUfrag) // no STUN, no DTLS, no WHIP DELETE
	ss.virtual, ss.cid, ss.clientIP = true, randomString(8), "127.0.0.1"
	ss.keyframes = make(chan struct{}, 1)
	desc := &sdpneg.StreamDesc{}
	for k, tr := range [route.NumKinds]*VirtualTrack{route.KindAudio: audio, route.KindVideo: video} {
		if tr == nil {
			continue
		}
		c := tr.Codec
		ss.codecs[k] = c.Name
		ss.tracks[k] = route.Track{SSRC: tr.SSRC, PT: c.PT, ClockRate: c.ClockRate, Codec: routeCodec(c.Name)}
		if route.Kind(k) == route.KindAudio {
			desc.Audio = &c
		} else {
			desc.Video = &c
		}
	}
	ss.desc = desc
	st.publisher = ss
	s.changedLocked(ss)
	return &VirtualPublisher{srv: s, ss: ss}, nil
}

// Session is the session id to inject the publisher's packets with.
func (v *VirtualPublisher) Session() route.SessionID { return v.ss.id }

// Info describes the virtual publisher as Events describe a WebRTC one
// (cmd bridges a relay's stream to RTMP, HTTP-FLV and HLS with it). Its
// fields are fixed at registration.
func (v *VirtualPublisher) Info() PublisherInfo { return v.ss.publisherInfo(v.ss.epoch) }

// Done is closed when the session has ended (Close, kick, shutdown).
func (v *VirtualPublisher) Done() <-chan struct{} { return v.ss.done }

// Close ends the session; its players stay for the next publisher.
func (v *VirtualPublisher) Close() { v.srv.end(v.ss, "virtual publisher closed") }

// publisherInfo describes ss for Events; ss.desc and the names are
// immutable after registration.
func (ss *session) publisherInfo(epoch uint32) PublisherInfo {
	info := PublisherInfo{Session: ss.id, Epoch: epoch, Vhost: ss.stream.vhost, App: ss.stream.app, Stream: ss.stream.name}
	if ss.desc != nil {
		info.Audio, info.Video = ss.desc.Audio, ss.desc.Video
	}
	return info
}

// publisherReady sends PublisherReady for a WebRTC publisher whose keys
// were just installed, unless it already ended.
func (s *Server) publisherReady(ss *session, epoch uint32) {
	if s.cfg.Events == nil || ss.role != route.RolePublisher || ss.virtual {
		return
	}
	ss.evMu.Lock()
	defer ss.evMu.Unlock()
	if ss.goneSent || ss.readySent {
		return
	}
	ss.readySent, ss.readyEpoch = true, epoch
	s.cfg.Events.PublisherReady(ss.publisherInfo(epoch))
}

// publisherGone sends PublisherGone once, if PublisherReady was sent.
func (s *Server) publisherGone(ss *session) {
	if s.cfg.Events == nil {
		return
	}
	ss.evMu.Lock()
	defer ss.evMu.Unlock()
	if ss.goneSent {
		return
	}
	ss.goneSent = true
	if ss.readySent {
		s.cfg.Events.PublisherGone(ss.publisherInfo(ss.readyEpoch))
	}
}
