// Package rtmp is the bridge's RTMP server, built on gortmplib: a publisher
// at rtmp://host/app/stream becomes a hub stream, and a player of the same
// URL reads one. The vhost comes from the tcUrl (`?vhost=` wins, as in SRS;
// otherwise Config.Vhost maps the tcUrl host). Publishing a stream that is
// already live is refused.
//
// Concurrency: Serve runs one goroutine per connection (plus one reader per
// player that drains the socket); Close stops the listener, closes every
// connection and waits for all of them. Imported by bridge.
package rtmp
