#!/bin/sh
# bench/cluster-summary.sh DIR "N_LIST" ROUNDS — the Markdown summary of bench/cluster.sh's
# JSON reports in DIR (rR-single.json, rR-cluster3.json, rR-edges.json): per round and N, the
# single node's CPU per egress packet, each node's in the two cluster layouts and the edges'
# ratio to the single node, and the origin's CPU in % of one core.
set -eu
DIR=$1
N_LIST=$2
ROUNDS=$3
# step FILE SUBS: that sweep step's result
step() { jq -c --argjson n "$2" '.steps[] | select(.subscribers_requested == $n)' "$1"; }
f2() { jq -r "$1" | awk '{ printf "%.2f", $1 }'; }

echo "| round | N/node | single µs/pkt (CPU %) | cluster3: A / B / C µs/pkt | B, C ÷ single | A − single CPU % | edges: B / C µs/pkt | B, C ÷ single | origin A CPU % (ingest + 2 relays) | max loss % |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
	for n in $N_LIST; do
		s=$(step "$DIR/r$r-single.json" "$n")
		c=$(step "$DIR/r$r-cluster3.json" $((3 * n)))
		e=$(step "$DIR/r$r-edges.json" $((2 * n)))
		su=$(echo "$s" | f2 .server_cpu_us_per_egress_packet)
		sc=$(echo "$s" | f2 .server_cpu_percent)
		cn() { echo "$c" | f2 ".nodes[$1].$2"; }
		en() { echo "$e" | f2 ".nodes[$1].$2"; }
		ratio() { awk -v a="$1" -v b="$su" 'BEGIN { printf "%.2f×", a / b }'; }
		diff=$(awk -v a="$(cn 0 server_cpu_percent)" -v b="$sc" 'BEGIN { printf "%.1f", a - b }')
		loss=$(printf '%s\n%s\n%s\n' "$s" "$c" "$e" | jq -s -r '[.[] | .loss_ratio, (.nodes // [] | .[].loss_ratio)] | max * 100' |
			awk '{ printf "%.3f", $1 }')
		echo "| $r | $n | $su ($sc) | $(cn 0 server_cpu_us_per_egress_packet) / $(cn 1 server_cpu_us_per_egress_packet) / $(cn 2 server_cpu_us_per_egress_packet) |" \
			"$(ratio "$(cn 1 server_cpu_us_per_egress_packet)"), $(ratio "$(cn 2 server_cpu_us_per_egress_packet)") | $diff |" \
			"$(en 0 server_cpu_us_per_egress_packet) / $(en 1 server_cpu_us_per_egress_packet) |" \
			"$(ratio "$(en 0 server_cpu_us_per_egress_packet)"), $(ratio "$(en 1 server_cpu_us_per_egress_packet)") |" \
			"$(en 2 server_cpu_percent) | $loss |"
	done
done
