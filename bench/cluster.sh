#!/bin/sh
# bench/cluster.sh — issue 17's scale-out benchmark (`bench/run.sh cluster`, `make bench-cluster`).
#
# One redis-server on a loopback port and Fanout processes built from this tree, all from
# conf/cluster.conf, measured by fanout-bench with -sink (subscribers counted and dropped by an
# eBPF filter once past their first keyframe, so the bench's receive work stays off the CPUs).
# Per round, for each N in N_LIST (players per node), three layouts back to back, each on fresh
# processes:
#
#   single   one Fanout (cluster off): 1 publisher → N players.
#   cluster3 origin A (the publisher's node) + edges B, C: 1 publisher → 3 nodes × N players,
#            round-robin over the three WHEP URLs; each edge pulls one WHEP relay from A.
#   edges    the same three nodes, players on B and C only (N each): A's CPU is then the
#            publisher's ingest plus the two relays, nothing else.
#   singles3 the control: three independent nodes (cluster off) on the same core, each with its
#            own publisher and N players (three fanout-bench processes at once), i.e. the
#            cluster's core sharing without the cluster.
#
# Every process's CPU comes from its own CPU clock (/proc/PID/stat fallback), per node, over the
# same 10 s window; "µs/egress pkt" = the node's CPU ÷ the packets its players counted. The
# servers are pinned to SERVER_CPUS (default 0, all of them: a cluster's nodes then share one
# core, as a single node has it alone), the bench to BENCH_CPUS (default 1). The summary
# (summary.md beside the JSON) gives each edge's µs/egress pkt ÷ the single node's at the same N,
# and the origin's CPU in % of one core.
#
# Environment: N_LIST (default "200 500"), ROUNDS (default 2; layouts alternate within a round),
# DUR (10s), BITRATE (1000000), SERVER_CPUS (0; empty = not pinned), BENCH_CPUS (1; empty = not
# pinned), PORT (29850: HTTP API on PORT+1..3, WebRTC UDP on PORT-50+1..3, RTMP on PORT-500+1..3,
# redis on PORT-3000), OUT (bench/results/cluster-TIMESTAMP).
set -eu
cd "$(dirname "$0")/.."
N_LIST=${N_LIST:-200 500}
ROUNDS=${ROUNDS:-2}
DUR=${DUR:-10s}
BITRATE=${BITRATE:-1000000}
SERVER_CPUS=${SERVER_CPUS-0}
BENCH_CPUS=${BENCH_CPUS-1}
PORT=${PORT:-29850}
OUT=${OUT:-bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
REDIS_PORT=$((PORT - 3000))
TMP=$(mktemp -d)
mkdir -p "$OUT"
go build -o "$TMP/fanout" ./cmd/fanout
go build -o "$TMP/fanout-bench" ./cmd/fanout-bench
PIDS=""
REDIS_PID=""

cleanup() {
	stop_nodes
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!

# start_node NAME INDEX CLUSTER(on|off): one Fanout on ports PORT+INDEX etc.
start_node() {
	api=$((PORT + $2))
	# shellcheck disable=SC2086 # taskset only when SERVER_CPUS is set
	env CANDIDATE=127.0.0.1 NODE_ID="$1" ADVERTISE="http://127.0.0.1:$api" \
		REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" SRS_CLUSTER_ENABLED="$3" \
		SRS_HTTP_API_LISTEN="127.0.0.1:$api" SRS_RTC_SERVER_LISTEN=$((PORT - 50 + $2)) \
		SRS_LISTEN=$((PORT - 500 + $2)) SRS_HTTP_SERVER_ENABLED=off \
		${SERVER_CPUS:+taskset -c $SERVER_CPUS} "$TMP/fanout" -c conf/cluster.conf >>"$OUT/$1.log" 2>&1 &
	PIDS="$PIDS $!"
	eval "PID_$1=$!"
	for _ in $(seq 50); do
		curl -sf -o /dev/null "http://127.0.0.1:$api/metrics" && return 0
		sleep 0.1
	done
	echo "cluster.sh: node $1 did not start (see $OUT/$1.log)" >&2
	exit 1
}

stop_nodes() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	PIDS=""
	redis-cli -p "$REDIS_PORT" flushall >/dev/null 2>&1 || true
}

url() { echo "http://127.0.0.1:$((PORT + $1))/rtc/v1/$2/?app=live&stream=bench"; }

# bench LABEL STEPS WHEPS PIDS [NODE]: one sweep publishing to NODE (default 1, A), JSON into
# OUT, with A's /metrics diffed over each window.
bench() {
	echo "cluster.sh: $1 (steps $2)" >&2
	# shellcheck disable=SC2086 # -bench-cpus only when BENCH_CPUS is set
	"$TMP/fanout-bench" -whip "$(url "${5:-1}" whip)" -whep "$3" -server-pid "$4" -mode sweep -steps "$2" -sink \
		-metrics "http://127.0.0.1:$((PORT + ${5:-1}))/metrics" \
		-dur "$DUR" -bitrate "$BITRATE" -concurrency 32 -connect-timeout 30s \
		${SERVER_CPUS:+-server-cpus $SERVER_CPUS} ${BENCH_CPUS:+-bench-cpus $BENCH_CPUS} \
		-json >"$OUT/$1.json"
}

steps() { # steps NODES: N_LIST times NODES, comma-separated
	for n in $N_LIST; do printf '%s,' $((n * $1)); done | sed 's/,$//'
}

for round in $(seq "$ROUNDS"); do
	start_node a 1 off
	bench "r$round-single" "$(steps 1)" "$(url 1 whep)" "$PID_a"
	stop_nodes
	start_node a 1 on && start_node b 2 on && start_node c 3 on
	bench "r$round-cluster3" "$(steps 3)" "$(url 1 whep),$(url 2 whep),$(url 3 whep)" "$PID_a,$PID_b,$PID_c"
	stop_nodes
	start_node a 1 on && start_node b 2 on && start_node c 3 on
	bench "r$round-edges" "$(steps 2)" "$(url 2 whep),$(url 3 whep)" "$PID_b,$PID_c,$PID_a"
	stop_nodes
	start_node a 1 off && start_node b 2 off && start_node c 3 off
	bench "r$round-singles3-a" "$(steps 1)" "$(url 1 whep)" "$PID_a" 1 &
	b1=$!
	bench "r$round-singles3-b" "$(steps 1)" "$(url 2 whep)" "$PID_b" 2 &
	b2=$!
	bench "r$round-singles3-c" "$(steps 1)" "$(url 3 whep)" "$PID_c" 3
	wait "$b1" "$b2"
	stop_nodes
done
sh bench/cluster-summary.sh "$OUT" "$N_LIST" "$ROUNDS" | tee "$OUT/summary.md"
