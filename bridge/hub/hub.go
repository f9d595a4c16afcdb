package hub

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
)

// Config sizes the hub's queues.
type Config struct {
	// Logger receives one line per publish and unpublish. Nil discards.
	Logger *slog.Logger
	// ReaderQueue is each reader's queue length in units (default 1024).
	ReaderQueue int
	// Inbox is each stream's publisher queue length in units (default 1024).
	Inbox int
	// GOPCache is the most units kept from the last key unit on for new
	// readers (default 512; negative turns the cache off).
	GOPCache int
	// Want, when set, is called on the asking goroutine when a player
	// asks for a stream that is not live here (SubscribeWait, Want):
	// cmd opens a relay from the node that owns it (issue 17's edge),
	// whose stream is then published here. It may block up to ctx.
	Want func(ctx context.Context, key Key)
}

// PublishFunc is called after a stream goes live. It runs on the
// publisher's goroutine and must not block (start a goroutine instead).
type PublishFunc func(key Key, tr Tracks)

// Hub is the registry of live streams. It is safe for concurrent use.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	mu      sync.Mutex
	streams map[Key]*stream
	hooks   []PublishFunc
	closed  bool
	live    Waitlist // woken on every publish
	drops   dropCounters
}

// Drops counts the units the hub's bounded queues dropped since New: a
// publisher's inbox that was full, a reader that was (or waited for the
// next key frame after a drop). Exported on /metrics by cmd.
type Drops struct{ Inbox, Readers uint64 }

type dropCounters struct{ inbox, readers atomic.Uint64 }

// Drops returns the hub's drop counts.
func (h *Hub) Drops() Drops {
	return Drops{Inbox: h.drops.inbox.Load(), Readers: h.drops.readers.Load()}
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.ReaderQueue <= 0 {
		cfg.ReaderQueue = 1024
	}
	if cfg.Inbox <= 0 {
		cfg.Inbox = 1024
	}
	if cfg.GOPCache == 0 {
		cfg.GOPCache = 512
	}
	if cfg.GOPCache > cfg.ReaderQueue/2 {
		cfg.GOPCache = cfg.ReaderQueue / 2
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{cfg: cfg, log: log, streams: make(map[Key]*stream)}
}

// OnPublish registers fn to run each time a stream goes live.
func (h *Hub) OnPublish(fn PublishFunc) {
	h.mu.Lock()
	h.hooks = append(h.hooks, fn)
	h.mu.Unlock()
}

// Publish makes key live with the given tracks. It fails with ErrStreamBusy
// when key is already live.
func (h *Hub) Publish(key Key, tr Tracks) (*Publisher, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := h.streams[key]; ok {
		h.mu.Unlock()
		return nil, ErrStreamBusy
	}
	s := newStream(key, tr, h.cfg, &h.drops)
	h.streams[key] = s
	hooks := append([]PublishFunc(nil), h.hooks...)
	h.mu.Unlock()
	go s.run()
	h.live.Wake(key)
	h.log.Info("stream published", "stream", key.String(), "video", tr.Video.String(), "audio", tr.Audio.String())
	for _, fn := range hooks {
		fn(key, tr)
	}
	return &Publisher{h: h, s: s}, nil
}

// Subscribe attaches a reader to a live stream.
func (h *Hub) Subscribe(key Key) (*Reader, error) {
	h.mu.Lock()
	s, ok := h.streams[key]
	h.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	return s.subscribe(h.cfg.ReaderQueue)
}

// SubscribeWait attaches a reader to key, waiting for it to be published
// when it is not live yet, as SRS's players may connect before the
// publisher. It returns ctx.Err() when ctx ends first (the caller bounds
// the wait) and ErrClosed when the hub closes. The wait runs on the
// caller's goroutine and leaves nothing behind.
func (h *Hub) SubscribeWait(ctx context.Context, key Key) (*Reader, error) {
	live := func() bool { _, ok := h.Tracks(key); return ok }
	for wanted := false; ; wanted = true {
		r, err := h.Subscribe(key)
		if !errors.Is(err, ErrNotFound) {
			return r, err
		}
		if !wanted {
			h.Want(ctx, key)
			continue
		}
		if err := h.live.Wait(ctx, key, live); err != nil {
			return nil, err
		}
	}
}

// Want tells Config.Want (if set) that a player asks for key, live or
// not: HLS requests call it on each playlist and segment, which keeps a
// relay that feeds only HLS players (they hold no reader) open.
func (h *Hub) Want(ctx context.Context, key Key) {
	if h.cfg.Want != nil {
		h.cfg.Want(ctx, key)
	}
}

// Readers is how many readers key has (0 when it is not live).
func (h *Hub) Readers(key Key) int {
	h.mu.Lock()
	s := h.streams[key]
	h.mu.Unlock()
	if s == nil {
		return 0
	}
	return int(s.nreaders.Load())
}

// Waiting returns how many SubscribeWait callers are waiting.
func (h *Hub) Waiting() int { return h.live.Waiting() }

// Tracks returns the tracks of a live stream.
func (h *Hub) Tracks(key Key) (Tracks, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.streams[key]
	if !ok {
		return Tracks{}, false
	}
	return s.tracks, true
}

// Keys lists the live streams, sorted.
func (h *Hub) Keys() []Key {
	h.mu.Lock()
	keys := make([]Key, 0, len(h.streams))
	for k := range h.streams {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}

// Close ends every stream; their readers see their queues closed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	all := make([]*stream, 0, len(h.streams))
	for k, s := range h.streams {
		all = append(all, s)
		delete(h.streams, k)
	}
	h.mu.Unlock()
	h.live.Close()
	for _, s := range all {
		s.close()
	}
}

func (h *Hub) remove(s *stream) {
	h.mu.Lock()
	if h.streams[s.key] == s {
		delete(h.streams, s.key)
	}
	h.mu.Unlock()
	s.close()
	h.log.Info("stream unpublished", "stream", s.key.String(), "dropped", s.dropped.Load())
}

// Publisher writes units into one live stream.
type Publisher struct {
	h    *Hub
	s    *stream
	once sync.Once
}

// Key returns the stream's key.
func (p *Publisher) Key() Key { return p.s.key }

// Write hands u to the stream's owner. It never blocks: when the inbox is
// full the unit is dropped and counted. u must not be modified afterwards.
func (p *Publisher) Write(u *Unit) {
	select {
	case p.s.in <- u:
	case <-p.s.done:
	default:
		p.s.dropped.Add(1)
		p.s.totals.inbox.Add(1)
	}
}

// Dropped returns how many units the inbox dropped.
func (p *Publisher) Dropped() uint64 { return p.s.dropped.Load() }

// Readers returns the current number of readers.
func (p *Publisher) Readers() int { return int(p.s.nreaders.Load()) }

// Close unpublishes the stream and waits for its owner goroutine to end.
func (p *Publisher) Close() {
	p.once.Do(func() { p.h.remove(p.s) })
}
