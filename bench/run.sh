#!/bin/sh
# bench/run.sh — the `make bench` scenario and the Fanout sweep, one command each.
#
#   bench/run.sh                 short default scenario (< 2 min): starts the pion
#                                reference relay as a child, 100 subscribers for 10 s
#                                plus the floor, report into bench/results/.
#   bench/run.sh fanout          sweep 100,500,1000,2000 subscribers against a running
#                                Fanout (FANOUT_PID required; URLs overridable below),
#                                floor at each step, report + plot into bench/results/.
#   bench/run.sh capacity        capacity ramp of one hot 4 Mbps stream against a running
#                                Fanout (FANOUT_PID required): subscribers unread (-sink),
#                                RAMP_START, then RAMP_STEP more (default 1500, 100, up to
#                                RAMP_MAX 6000) until loss > 0.5 % or the server falls
#                                behind. For a server on every CPU set BENCH_CPUS= (empty).
#   bench/run.sh cluster         issue 17's scale-out: redis-server + 3 Fanout nodes (origin,
#                                2 edges) against 1 node, N_LIST players per node, ROUNDS
#                                alternations; see bench/cluster.sh (builds its own binaries).
#   bench/run.sh xdp             AF_XDP vs socket mode (issue 16; root): Fanout on one core in
#                                a network namespace, fanout-bench in another over veth; a
#                                100/500/1000 sweep with the floor, then a capacity ramp
#                                (-sink), socket mode then xdp_mode afxdp (bench/xdp.sh).
#
# Environment: FANOUT_PID, FANOUT_WHIP, FANOUT_WHEP, FANOUT_METRICS, SERVER_CPUS (default 0),
# BENCH_CPUS (default 1), DUR (default 10s), BITRATE (default 1000000), RX_POLL (default 0:
# readers block in epoll_wait; e.g. 500us polls instead, see bench/README.md).
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-$(mktemp -d)/fanout-bench}
go build -o "$BIN" ./cmd/fanout-bench
SERVER_CPUS=${SERVER_CPUS:-0}
BENCH_CPUS=${BENCH_CPUS-1}
DUR=${DUR:-10s}
BITRATE=${BITRATE:-1000000}
RX_POLL=${RX_POLL:-0}
case "${1:-default}" in
default)
	exec "$BIN" -self-relay -subs 100 -dur "$DUR" -bitrate "$BITRATE" -floor \
		-server-cpus "$SERVER_CPUS" -bench-cpus "$BENCH_CPUS" -rx-poll "$RX_POLL" -report bench/results/ -v
	;;
fanout)
	: "${FANOUT_PID:?set FANOUT_PID to the fanout server process id}"
	WHIP=${FANOUT_WHIP:-http://127.0.0.1:1985/rtc/v1/whip/?app=live&stream=bench}
	WHEP=${FANOUT_WHEP:-http://127.0.0.1:1985/rtc/v1/whep/?app=live&stream=bench}
	METRICS=${FANOUT_METRICS:-http://127.0.0.1:1985/metrics}
	exec "$BIN" -whip "$WHIP" -whep "$WHEP" -server-pid "$FANOUT_PID" -metrics "$METRICS" \
		-mode sweep -steps 100,500,1000,2000 -dur "$DUR" -bitrate "$BITRATE" -floor \
		-server-cpus "$SERVER_CPUS" -bench-cpus "$BENCH_CPUS" -rx-poll "$RX_POLL" -concurrency 32 \
		-report bench/results/ -v
	;;
capacity)
	: "${FANOUT_PID:?set FANOUT_PID to the fanout server process id}"
	WHIP=${FANOUT_WHIP:-http://127.0.0.1:1985/rtc/v1/whip/?app=live&stream=bench}
	WHEP=${FANOUT_WHEP:-http://127.0.0.1:1985/rtc/v1/whep/?app=live&stream=bench}
	METRICS=${FANOUT_METRICS:-http://127.0.0.1:1985/metrics}
	# shellcheck disable=SC2086 # -bench-cpus only when BENCH_CPUS is set
	exec "$BIN" -whip "$WHIP" -whep "$WHEP" -server-pid "$FANOUT_PID" -metrics "$METRICS" \
		-mode ramp -sink -loss-threshold 0.005 -bitrate 4000000 -dur 5s -concurrency 32 \
		-ramp-start "${RAMP_START:-1500}" -ramp-step "${RAMP_STEP:-100}" -ramp-max "${RAMP_MAX:-6000}" \
		-connect-timeout 30s -server-cpus "$SERVER_CPUS" ${BENCH_CPUS:+-bench-cpus $BENCH_CPUS} \
		-report bench/results/ -v
	;;
cluster)
	exec sh bench/cluster.sh
	;;
xdp)
	exec bench/xdp.sh "$BIN"
	;;
*)
	echo "usage: bench/run.sh [default|fanout|capacity|cluster|xdp]" >&2
	exit 2
	;;
esac
