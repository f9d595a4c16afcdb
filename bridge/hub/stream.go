package hub

import (
	"sync"
	"sync/atomic"
)

// stream is one live stream; run is its owner goroutine.
type stream struct {
	key      Key
	tracks   Tracks
	gopLimit int

	in       chan *Unit
	add      chan *Reader
	del      chan *Reader
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	dropped  atomic.Uint64
	nreaders atomic.Int32
	totals   *dropCounters // the hub's, for Hub.Drops

	// owned by run
	readers map[*Reader]struct{}
	gop     []*Unit
}

func newStream(key Key, tr Tracks, cfg Config, totals *dropCounters) *stream {
	return &stream{
		key: key, tracks: tr, gopLimit: cfg.GOPCache, totals: totals,
		in:   make(chan *Unit, cfg.Inbox),
		add:  make(chan *Reader),
		del:  make(chan *Reader),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

func (s *stream) run() {
	defer close(s.done)
	s.readers = make(map[*Reader]struct{})
	for {
		select {
		case u := <-s.in:
			s.fanout(u)
		case r := <-s.add:
			s.attach(r)
		case r := <-s.del:
			s.detach(r)
		case <-s.stop:
			s.drain()
			for r := range s.readers {
				s.detach(r)
			}
			return
		}
	}
}

// drain delivers what the publisher wrote before it closed.
func (s *stream) drain() {
	for {
		select {
		case u := <-s.in:
			s.fanout(u)
		default:
			return
		}
	}
}

func (s *stream) fanout(u *Unit) {
	s.cache(u)
	for r := range s.readers {
		r.push(u)
	}
}

// cache keeps the units since the last key unit, up to gopLimit.
func (s *stream) cache(u *Unit) {
	if s.gopLimit <= 0 || s.tracks.Video == CodecNone {
		return
	}
	if u.IsVideo() && u.Key {
		clear(s.gop)
		s.gop = append(s.gop[:0], u)
		return
	}
	if len(s.gop) == 0 {
		return
	}
	if len(s.gop) >= s.gopLimit {
		clear(s.gop)
		s.gop = s.gop[:0]
		return
	}
	s.gop = append(s.gop, u)
}

func (s *stream) attach(r *Reader) {
	s.readers[r] = struct{}{}
	s.nreaders.Add(1)
	for _, u := range s.gop {
		r.push(u)
	}
}

func (s *stream) detach(r *Reader) {
	if _, ok := s.readers[r]; !ok {
		return
	}
	delete(s.readers, r)
	s.nreaders.Add(-1)
	close(r.ch)
}

func (s *stream) subscribe(queue int) (*Reader, error) {
	r := &Reader{s: s, ch: make(chan *Unit, queue), needKey: s.tracks.Video != CodecNone}
	select {
	case s.add <- r:
		return r, nil
	case <-s.done:
		return nil, ErrNotFound
	}
}

func (s *stream) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Reader receives the units of one stream through a bounded queue.
type Reader struct {
	s       *stream
	ch      chan *Unit
	needKey bool // owned by the stream's run goroutine
	dropped atomic.Uint64
	once    sync.Once
}

// push runs on the owner goroutine. After a drop, video resumes at the next
// key unit so the reader never decodes a broken reference chain.
func (r *Reader) push(u *Unit) {
	if u.IsVideo() {
		if r.needKey && !u.Key {
			r.dropped.Add(1)
			r.s.totals.readers.Add(1)
			return
		}
		r.needKey = false
	}
	select {
	case r.ch <- u:
	default:
		r.dropped.Add(1)
		r.s.totals.readers.Add(1)
		if r.s.tracks.Video != CodecNone {
			r.needKey = true
		}
	}
}

// Units returns the reader's queue. It is closed when the stream ends or
// the reader is closed.
func (r *Reader) Units() <-chan *Unit { return r.ch }

// Tracks returns the stream's tracks.
func (r *Reader) Tracks() Tracks { return r.s.tracks }

// Key returns the stream's key.
func (r *Reader) Key() Key { return r.s.key }

// Dropped returns how many units this reader lost to a full queue (and the
// video units skipped until the next key unit).
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Close detaches the reader; its queue is closed by the owner.
func (r *Reader) Close() {
	r.once.Do(func() {
		select {
		case r.s.del <- r:
		case <-r.s.done:
		}
	})
}
