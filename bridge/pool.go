package bridge

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// pool runs transcoding jobs on a fixed number of workers. A stream is
// pinned to one worker (its slot) so its jobs run in order; a worker's queue
// is bounded and a job that does not fit is dropped and counted. A panic in
// a job is recovered and reported to the job's stream only.
type pool struct {
	log     *slog.Logger
	queues  []chan job
	wg      sync.WaitGroup
	next    atomic.Uint32
	dropped atomic.Uint64
	once    sync.Once
}

type job struct {
	run   func()
	onErr func(error)
}

func newPool(workers, depth int, log *slog.Logger) *pool {
	p := &pool{log: log, queues: make([]chan job, workers)}
	for i := range p.queues {
		q := make(chan job, depth)
		p.queues[i] = q
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for j := range q {
				p.exec(j)
			}
		}()
	}
	return p
}

func (p *pool) exec(j job) {
	defer func() {
		if r := recover(); r != nil {
			err := fmt.Errorf("transcode job panicked: %v", r)
			p.log.Error("transcode worker recovered", "err", err)
			if j.onErr != nil {
				j.onErr(err)
			}
		}
	}()
	j.run()
}

// slot assigns a worker to a new stream, round robin.
func (p *pool) slot() int { return int(p.next.Add(1)-1) % len(p.queues) }

// submit queues fn on the slot's worker without blocking; false means the
// queue was full and the job was dropped.
func (p *pool) submit(slot int, fn func(), onErr func(error)) bool {
	select {
	case p.queues[slot] <- job{run: fn, onErr: onErr}:
		return true
	default:
		p.dropped.Add(1)
		return false
	}
}

// close lets the workers finish queued jobs and waits for them. No submit
// may run concurrently with or after close.
func (p *pool) close() {
	p.once.Do(func() {
		for _, q := range p.queues {
			close(q)
		}
		p.wg.Wait()
	})
}

// submitWait queues fn even when the queue is full, waiting for room. It is
// used for a stream's last job (freeing its codecs) so it is never lost.
func (p *pool) submitWait(slot int, fn func()) {
	p.queues[slot] <- job{run: fn}
}
