// Package rtmp is the bridge's RTMP server: a publisher at
// rtmp://host/app/stream becomes a hub stream, and a player of the same URL
// reads one. Publishing a stream that is already live is refused.
//
// The connection's command phase (handshake, connect, createStream,
// publish/play; conn.go) is Fanout's own, done the way SRS does it, on
// gortmplib's handshake, message and amf0 packages; gortmplib's Reader and
// Writer then carry the media over it. gortmplib.ServerConn is not used
// because it cannot be configured to do what SRS does: it refuses a
// connect command object without `app` ("invalid connect command") although
// SRS, and the clients written against it, take the app from tcUrl alone,
// and it joins tcUrl and stream name as one URL, which loses the app of
// FMLE-style rtmp://host/app?vhost=x/stream. Here the tcUrl and stream name
// are split as SRS's srs_discovery_tc_url does (url.go): `?vhost=` (or
// `?domain=`) from either part wins over the tcUrl host, and Config.Vhost
// maps the name to a configured vhost (the default one when unknown).
//
// Concurrency: Serve runs one goroutine per connection (plus one reader per
// player that drains the socket); Close stops the listener, closes every
// connection and waits for all of them. Imported by bridge.
package rtmp
