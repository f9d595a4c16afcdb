package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Key names; the layout is in the package doc.
const (
	keyPrefix    = "fanout:"
	nodePrefix   = keyPrefix + "node:"
	streamPrefix = keyPrefix + "stream:"
	eventChannel = keyPrefix + "events"
)

// refreshScript extends the owner key only if its value is the caller's id.
var refreshScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// releaseScript deletes the owner key only if its value is the caller's
// id, and announces it in the same step.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("DEL", KEYS[1])
  redis.call("PUBLISH", KEYS[2], ARGV[2])
  return 1
end
return 0`)

// Redis is the Registry on a Redis server.
type Redis struct {
	rdb *redis.Client
	log *slog.Logger
}

// NewRedis connects lazily to the server named by url
// (redis://[user:pass@]host:port/db, rediss:// for TLS; go-redis ParseURL).
// Calls time out after a second and dial once, so a dead server fails
// fast; after repeated dial failures go-redis probes the server once a
// second, which bounds how soon a restarted server is seen.
func NewRedis(url string, log *slog.Logger) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster redis url: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries, opt.DialerRetries = 1, 1
	quietOnce.Do(func() { redis.SetLogger(debugLogger{log}) })
	return &Redis{rdb: redis.NewClient(opt), log: log}, nil
}

// go-redis logs every failed dial through one process-wide logger; the
// member already logs an outage once (and counts every failed call), so
// go-redis's lines go to the first registry's logger at debug level.
var quietOnce sync.Once

type debugLogger struct{ log *slog.Logger }

func (d debugLogger) Printf(ctx context.Context, format string, v ...any) {
	d.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

func streamKey(s Stream) string { return streamPrefix + s.String() }

func parseStreamKey(k string) (Stream, bool) {
	parts := strings.SplitN(strings.TrimPrefix(k, streamPrefix), "/", 3)
	if len(parts) != 3 {
		return Stream{}, false
	}
	return Stream{Vhost: parts[0], App: parts[1], Name: parts[2]}, true
}

func (r *Redis) publish(ctx context.Context, e Event) error {
	b, _ := json.Marshal(e)
	return r.rdb.Publish(ctx, eventChannel, b).Err()
}

func (r *Redis) Heartbeat(ctx context.Context, n NodeInfo, ttl time.Duration) error {
	b, _ := json.Marshal(n)
	if err := r.rdb.Set(ctx, nodePrefix+n.ID, b, ttl).Err(); err != nil {
		return unavailable("heartbeat", err)
	}
	return nil
}

func (r *Redis) Leave(ctx context.Context, id string) error {
	if err := r.rdb.Del(ctx, nodePrefix+id).Err(); err != nil {
		return unavailable("leave", err)
	}
	if err := r.publish(ctx, Event{Kind: NodeDown, Node: id}); err != nil {
		return unavailable("leave", err)
	}
	return nil
}

// scan lists the keys under prefix (SCAN, not KEYS: it does not block Redis).
func (r *Redis) scan(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	it := r.rdb.Scan(ctx, 0, prefix+"*", 256).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	return keys, it.Err()
}

func (r *Redis) Nodes(ctx context.Context) ([]NodeInfo, error) {
	keys, err := r.scan(ctx, nodePrefix)
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable("nodes", err)
	}
	out := make([]NodeInfo, 0, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // expired between SCAN and MGET
		}
		var n NodeInfo
		if err := json.Unmarshal([]byte(s), &n); err != nil {
			r.log.Warn("cluster: bad node key", "key", keys[i], "err", err)
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func (r *Redis) Claim(ctx context.Context, s Stream, node string, ttl time.Duration) (string, error) {
	won, err := r.rdb.SetNX(ctx, streamKey(s), node, ttl).Result()
	if err != nil {
		return "", unavailable("claim", err)
	}
	if won {
		if err := r.publish(ctx, Event{Kind: StreamUp, Node: node, Stream: s}); err != nil {
			return node, unavailable("claim", err)
		}
		return node, nil
	}
	owner, err := r.rdb.Get(ctx, streamKey(s)).Result()
	if err == redis.Nil { //nolint:errorlint // go-redis returns the sentinel itself
		return r.Claim(ctx, s, node, ttl) // expired between SETNX and GET
	}
	if err != nil {
		return "", unavailable("claim", err)
	}
	return owner, nil
}

func (r *Redis) Refresh(ctx context.Context, s Stream, node string, ttl time.Duration) (bool, error) {
	n, err := refreshScript.Run(ctx, r.rdb, []string{streamKey(s)}, node, ttl.Milliseconds()).Int()
	if err != nil {
		return false, unavailable("refresh", err)
	}
	return n == 1, nil
}

func (r *Redis) Release(ctx context.Context, s Stream, node string) error {
	b, _ := json.Marshal(Event{Kind: StreamDown, Node: node, Stream: s})
	if err := releaseScript.Run(ctx, r.rdb, []string{streamKey(s), eventChannel}, node, b).Err(); err != nil {
		return unavailable("release", err)
	}
	return nil
}

func (r *Redis) Owner(ctx context.Context, s Stream) (string, bool, error) {
	owner, err := r.rdb.Get(ctx, streamKey(s)).Result()
	if err == redis.Nil { //nolint:errorlint // go-redis returns the sentinel itself
		return "", false, nil
	}
	if err != nil {
		return "", false, unavailable("owner", err)
	}
	return owner, true, nil
}

func (r *Redis) Owners(ctx context.Context) (map[Stream]string, error) {
	keys, err := r.scan(ctx, streamPrefix)
	if err != nil {
		return nil, unavailable("owners", err)
	}
	out := make(map[Stream]string, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, unavailable("owners", err)
	}
	for i, v := range vals {
		s, ok := parseStreamKey(keys[i])
		if node, isStr := v.(string); ok && isStr {
			out[s] = node
		}
	}
	return out, nil
}

// Subscribe reads fanout:events; go-redis reconnects and resubscribes the
// channel by itself after an outage.
func (r *Redis) Subscribe(ctx context.Context) <-chan Event {
	ps := r.rdb.Subscribe(ctx, eventChannel)
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer ps.Close()
		msgs := ps.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				var e Event
				if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
					r.log.Warn("cluster: bad event", "payload", m.Payload, "err", err)
					continue
				}
				select {
				case out <- e:
				default: // the sweep repairs what a slow reader lost
				}
			}
		}
	}()
	return out
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.rdb.Close() }
