#!/bin/sh
# bench/xdp.sh BENCH_BIN — run by `bench/run.sh xdp` (issue 16): Fanout in
# namespace fxb-b on one core (SERVER_CPUS, default 0), fanout-bench in
# fxb-a (BENCH_CPUS, default 1), joined by a veth pair with native XDP on
# Fanout's end. For MODES (default "socket afxdp"): a 1 Mbps sweep of
# STEPS (default 100,500,1000) subscribers with the floor, then a capacity
# ramp with -sink from RAMP_START by RAMP_STEP to RAMP_MAX (defaults 1000,
# 500, 10000) at < 0.5 % loss. Reports go to bench/results/xdp-MODE-*.
# Needs root (namespaces, XDP, AF_XDP, the -sink socket filters).
set -euf # -f: no globbing of the URLs ("?")
BIN=$1
cd "$(dirname "$0")/.."
FANOUT=$(dirname "$BIN")/fanout
go build -o "$FANOUT" ./cmd/fanout
SERVER_CPUS=${SERVER_CPUS:-0}
BENCH_CPUS=${BENCH_CPUS:-1}
DUR=${DUR:-10s}
STEPS=${STEPS:-100,500,1000}
MODES=${MODES:-socket afxdp}
A=fxb-a B=fxb-b DEVA=fxba DEVB=fxbb IPA=10.214.0.1 IPB=10.214.0.2
cleanup() {
	[ -n "${PID:-}" ] && kill "$PID" 2>/dev/null || true
	ip netns del $A 2>/dev/null || true
	ip netns del $B 2>/dev/null || true
}
trap cleanup EXIT INT TERM
cleanup
ip netns add $A
ip netns add $B
ip link add $DEVA netns $A type veth peer name $DEVB netns $B
ip -n $A addr add $IPA/24 dev $DEVA
ip -n $B addr add $IPB/24 dev $DEVB
for ns in $A $B; do ip -n $ns link set lo up; done
ip -n $A link set $DEVA up
ip -n $B link set $DEVB up
CONF=$(mktemp)
API=http://$IPB:1985
for mode in $MODES; do
	case $mode in
	socket) fp="cores 1;" ;;
	# The shield's per-source STUN limit is lifted: every subscriber comes from one IP.
	afxdp) fp="cores 1; xdp $DEVB; xdp_mode afxdp; xdp_stun_rate 1000000; xdp_stun_burst 1000000;" ;;
	*) echo "unknown mode $mode" >&2; exit 2 ;;
	esac
	cat >"$CONF" <<CONF
listen 1935;
daemon off;
max_connections 30000;
limits { requests_per_ip 0; sessions_per_ip 0; }
http_api { enabled on; listen 1985; }
rtc_server { enabled on; listen 8000; candidate $IPB; }
vhost __defaultVhost__ { rtc { enabled on; stun_timeout 30; } }
fastpath { $fp }
CONF
	ip netns exec $B taskset -c "$SERVER_CPUS" "$FANOUT" -c "$CONF" >"bench/results/xdp-$mode-server.log" 2>&1 &
	PID=$!
	for _ in $(seq 50); do
		ip netns exec $A curl -fs "$API/api/v1/versions" >/dev/null 2>&1 && break
		sleep 0.2
	done
	common="-server-pid $PID -metrics $API/metrics -local $IPA -bitrate 1000000 -concurrency 32
		-server-cpus $SERVER_CPUS -bench-cpus $BENCH_CPUS -connect-timeout 30s -v"
	echo "== $mode: sweep $STEPS" >&2
	mkdir -p "bench/results/xdp-$mode-sweep" "bench/results/xdp-$mode-ramp"
	# shellcheck disable=SC2086
	ip netns exec $A "$BIN" $common -whip "$API/rtc/v1/whip/?app=live&stream=sweep" \
		-whep "$API/rtc/v1/whep/?app=live&stream=sweep" -mode sweep -steps "$STEPS" -dur "$DUR" -floor \
		-report "bench/results/xdp-$mode-sweep/" || echo "sweep failed" >&2
	echo "== $mode: capacity ramp" >&2
	# shellcheck disable=SC2086
	ip netns exec $A "$BIN" $common -whip "$API/rtc/v1/whip/?app=live&stream=ramp" \
		-whep "$API/rtc/v1/whep/?app=live&stream=ramp" -mode ramp -sink -loss-threshold 0.005 -dur 5s \
		-ramp-start "${RAMP_START:-1000}" -ramp-step "${RAMP_STEP:-500}" -ramp-max "${RAMP_MAX:-10000}" \
		-report "bench/results/xdp-$mode-ramp/" || echo "ramp failed" >&2
	ip netns exec $A curl -fs "$API/metrics" | grep -E '^fanout_(xsk|xdp|fastpath_(rx|tx)_packets)' >"bench/results/xdp-$mode-metrics.txt" || true
	kill "$PID"; wait "$PID" 2>/dev/null || true
	PID=
done
