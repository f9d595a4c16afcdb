package hls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/fanout/fanout/bridge/hub"
)

// ErrNotFound means no HLS muxer runs for the stream.
var ErrNotFound = errors.New("hls: stream not found")

// Params are one vhost's HLS settings.
type Params struct {
	Enabled  bool
	Fragment time.Duration // hls_fragment (default 10s)
	Window   time.Duration // hls_window (default 60s)
}

// Config configures a Manager.
type Config struct {
	Hub    *hub.Hub
	Logger *slog.Logger
	// Vhost returns the HLS settings of a vhost. Nil enables HLS everywhere
	// with the defaults.
	Vhost func(vhost string) Params
}

// Manager runs one muxer per live stream.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	muxers map[hub.Key]*gohlslib.Muxer
	// ready is closed once a muxer's playlist has content (or the muxer
	// closed): see awaitContent.
	ready   map[*gohlslib.Muxer]chan struct{}
	readers map[*hub.Reader]struct{}
	closed  bool
	wg      sync.WaitGroup
	started hub.Waitlist // woken when a muxer starts
}

// New returns a manager that starts a muxer for every stream published on
// cfg.Hub from now on.
func New(cfg Config) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{cfg: cfg, log: log, muxers: map[hub.Key]*gohlslib.Muxer{},
		ready: map[*gohlslib.Muxer]chan struct{}{}, readers: map[*hub.Reader]struct{}{}}
	cfg.Hub.OnPublish(m.onPublish)
	return m
}

func (m *Manager) params(vhost string) Params {
	p := Params{Enabled: true}
	if m.cfg.Vhost != nil {
		p = m.cfg.Vhost(vhost)
	}
	if p.Fragment <= 0 {
		p.Fragment = 10 * time.Second
	}
	if p.Window <= 0 {
		p.Window = 60 * time.Second
	}
	return p
}

func (m *Manager) onPublish(key hub.Key, tr hub.Tracks) {
	p := m.params(key.Vhost)
	if !p.Enabled || (tr.Video != hub.CodecH264 && tr.Audio != hub.CodecAAC) {
		return
	}
	rd, err := m.cfg.Hub.Subscribe(key)
	if err != nil {
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		rd.Close()
		return
	}
	m.readers[rd] = struct{}{}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		m.run(rd, p)
	}()
}

// run feeds one stream's muxer until the stream ends.
func (m *Manager) run(rd *hub.Reader, p Params) {
	defer func() {
		rd.Close()
		m.mu.Lock()
		delete(m.readers, rd)
		m.mu.Unlock()
	}()
	key, tr := rd.Key(), rd.Tracks()
	log := m.log.With("stream", key.String())
	var f *feeder
	for u := range rd.Units() {
		if f == nil {
			if tr.Video == hub.CodecH264 && (!u.IsVideo() || !u.Key) {
				continue
			}
			var err error
			if f, err = m.start(key, tr, u, p); err != nil {
				log.Warn("hls muxer failed to start", "err", err)
				return
			}
			defer m.stop(key, f.mux)
		}
		if err := f.write(u); err != nil {
			log.Debug("hls write", "err", err)
		}
	}
}

func (m *Manager) start(key hub.Key, tr hub.Tracks, first *hub.Unit, p Params) (*feeder, error) {
	f := &feeder{base: first.DTS, ntp: time.Now()}
	var tracks []*gohlslib.Track
	if tr.Video == hub.CodecH264 {
		sps, pps := first.Params()
		f.video = &gohlslib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}, ClockRate: 90000}
		tracks = append(tracks, f.video)
	}
	if tr.Audio == hub.CodecAAC {
		var asc mpeg4audio.AudioSpecificConfig
		if err := asc.Unmarshal(tr.AudioConfig); err != nil {
			return nil, fmt.Errorf("hls aac config: %w", err)
		}
		f.audio = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: asc}, ClockRate: asc.SampleRate}
		tracks = append(tracks, f.audio)
	}
	count := int(math.Ceil(float64(p.Window) / float64(p.Fragment)))
	f.mux = &gohlslib.Muxer{
		Tracks:             tracks,
		Variant:            gohlslib.MuxerVariantMPEGTS,
		SegmentCount:       max(count, 3),
		SegmentMinDuration: p.Fragment,
		OnEncodeError:      func(err error) { m.log.Debug("hls encode", "stream", key.String(), "err", err) },
	}
	if err := f.mux.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	m.mu.Lock()
	m.muxers[key] = f.mux
	m.ready[f.mux] = ready
	m.mu.Unlock()
	m.wg.Add(1)
	go m.awaitContent(f.mux, ready)
	m.started.Wake(key)
	return f, nil
}

func (m *Manager) stop(key hub.Key, mux *gohlslib.Muxer) {
	m.mu.Lock()
	if m.muxers[key] == mux {
		delete(m.muxers, key)
	}
	delete(m.ready, mux)
	m.mu.Unlock()
	mux.Close()
}

// Close stops every muxer and waits for the feeding goroutines.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	for rd := range m.readers {
		rd.Close()
	}
	m.mu.Unlock()
	m.started.Close()
	m.wg.Wait()
}

// Readers is how many hub readers of key the muxers hold (0 or 1): what
// a count of key's players leaves out, HLS players holding no reader.
func (m *Manager) Readers(key hub.Key) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for rd := range m.readers {
		if rd.Key() == key {
			n++
		}
	}
	return n
}

// Wait blocks until a muxer runs for key (the stream is live and its first
// key frame arrived), ctx ends (ctx.Err) or the manager closes. It answers
// ErrNotFound at once when HLS is off for the key's vhost.
func (m *Manager) Wait(ctx context.Context, key hub.Key) error {
	if !m.params(key.Vhost).Enabled {
		return ErrNotFound
	}
	return m.started.Wait(ctx, key, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.muxers[key] != nil
	})
}

// feeder writes hub units into one muxer.
type feeder struct {
	mux          *gohlslib.Muxer
	video, audio *gohlslib.Track
	base         time.Duration
	ntp          time.Time
}

func (f *feeder) write(u *hub.Unit) error {
	d := u.PTS - f.base
	if d < 0 {
		return nil
	}
	ntp := f.ntp.Add(d)
	switch {
	case u.IsVideo() && f.video != nil:
		return f.mux.WriteH264(f.video, ntp, int64(d)*90000/int64(time.Second), u.NALUs)
	case u.Codec == hub.CodecAAC && f.audio != nil:
		rate := int64(f.audio.ClockRate)
		return f.mux.WriteMPEG4Audio(f.audio, ntp, int64(d)*rate/int64(time.Second), [][]byte{u.Frame})
	}
	return nil
}

// Serve answers /{app}/{stream}.m3u8 (file = "{stream}.m3u8") and
// /{app}/{stream}/{segment} (file = "{segment}").
func (m *Manager) Serve(w http.ResponseWriter, r *http.Request, key hub.Key, file string) error {
	m.mu.Lock()
	mux := m.muxers[key]
	ready := m.ready[mux]
	m.mu.Unlock()
	if mux == nil {
		return ErrNotFound
	}
	r2 := r.Clone(r.Context())
	if strings.HasSuffix(file, ".m3u8") {
		select {
		case <-ready:
		case <-r.Context().Done():
			return r.Context().Err()
		}
		r2.URL.Path = "/main_stream.m3u8"
		rec := &recorder{h: http.Header{}, code: http.StatusOK}
		mux.Handle(rec, r2)
		body := rec.buf.Bytes()
		if rec.code == http.StatusOK {
			body = prefixURIs(body, key.Stream+"/")
		}
		for k, v := range rec.h {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(body)
		return nil
	}
	r2.URL.Path = "/" + file
	tw := &touched{ResponseWriter: w}
	mux.Handle(tw, r2)
	if !tw.wrote {
		// gohlslib answers nothing for a file it does not have, which
		// net/http would send as an empty 200 (found by httplive's
		// FuzzRequest).
		return ErrNotFound
	}
	return nil
}

// touched notes whether a handler wrote a status or a byte.
type touched struct {
	http.ResponseWriter
	wrote bool
}

func (t *touched) WriteHeader(code int) { t.wrote = true; t.ResponseWriter.WriteHeader(code) }

func (t *touched) Write(b []byte) (int, error) { t.wrote = true; return t.ResponseWriter.Write(b) }

func (t *touched) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// awaitContent closes ready once mux's playlist has content: gohlslib's
// playlist handler waits on a sync.Cond for the first segment without
// looking at the request's context, so a request for the playlist of a
// stream whose first segment never completes (no second key frame) would
// hold its goroutine, whatever the client did, until the stream ended
// (found by httplive's FuzzRequest). This one goroutine per muxer does
// that wait; requests wait for ready or their context. It returns when
// the playlist has content or the muxer closes (stop), and Close waits
// for it.
func (m *Manager) awaitContent(mux *gohlslib.Muxer, ready chan struct{}) {
	defer m.wg.Done()
	defer close(ready)
	r, _ := http.NewRequest(http.MethodGet, "/main_stream.m3u8", nil)
	mux.Handle(&recorder{h: http.Header{}}, r)
}

// prefixURIs puts dir in front of every URI line of a playlist.
func prefixURIs(pl []byte, dir string) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(pl) {
		if len(bytes.TrimSpace(line)) > 0 && line[0] != '#' {
			out.WriteString(dir)
		}
		out.Write(line)
	}
	return out.Bytes()
}

type recorder struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.buf.Write(b) }
