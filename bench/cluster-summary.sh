#!/bin/sh
# bench/cluster-summary.sh DIR "N_LIST" ROUNDS [counted|expected] — the Markdown summary of
# bench/cluster.sh's JSON reports in DIR (rR-single, -cluster3, -edges, -singles3-{a,b,c}.json): per
# round and N, the single node's CPU per egress packet, each node's in the two cluster layouts,
# the edges' ratio to the single node and to the origin with as many players in the same run
# (three processes sharing the core) and to three independent single nodes sharing the core
# (the control), and the origin's CPU in % of one core.
#
# The packets per node: "expected" (default) = publisher packets in the window × the node's
# players, the egress the node owes, which a window edge cut in the middle of a server's backlog
# (a descheduled server on a loaded machine; fanout-bench notes "counted … more media than the
# publisher sent") does not skew; "counted" = what the players' sink counted (fanout-bench's own
# µs/pkt). Loss is in its own column either way.
set -eu
DIR=$1
N_LIST=$2
ROUNDS=$3
DENOM=${4:-expected}

# opt FILE: FILE, or /dev/null (an empty slurp) when an older run has no such layout.
opt() { if [ -f "$1" ]; then echo "$1"; else echo /dev/null; fi; }

# row R N: one table row from the three layouts' sweep steps at N players per node.
row() {
	jq -n -r --argjson r "$1" --argjson n "$2" --arg denom "$DENOM" \
		--slurpfile s "$DIR/r$1-single.json" --slurpfile c "$DIR/r$1-cluster3.json" --slurpfile e "$DIR/r$1-edges.json" \
		--slurpfile t "$(opt "$DIR/r$1-singles3-a.json")" --slurpfile t2 "$(opt "$DIR/r$1-singles3-b.json")" \
		--slurpfile t3 "$(opt "$DIR/r$1-singles3-c.json")" '
	def step($f; $k): $f[0].steps[]? | select(.subscribers_requested == $k * $n);
	def us($x; $d): if $denom == "counted" then $x.server_cpu_us_per_egress_packet
		else $x.server_cpu_percent * $d * 1e4 / $x.packets_expected end;
	def f: if . == null then "n/a" else (. * 100 | round) as $v | (if $v < 0 then -$v else $v end) as $a |
		(if $v < 0 then "-" else "" end) + ($a / 100 | floor | tostring) + "." +
		($a % 100 | tostring | if length < 2 then "0" + . else . end) end;
	def x: if . == null then "n/a" else f + "×" end;
	def q($a; $b): if $a == null or $b == null then null else $a / $b end;
	step($s; 1) as $S | step($c; 3) as $C | step($e; 2) as $E |
	[step($t; 1), step($t2; 1), step($t3; 1)] as $T |
	(if ($T | length) == 3 then [$T[] | us(.; .duration_s)] | add / 3 else null end) as $tu |
	us($S; $S.duration_s) as $su |
	[range(3) | us($C.nodes[.]; $C.duration_s)] as $cu |
	[range(2) | us($E.nodes[.]; $E.duration_s)] as $eu |
	([$S.loss_ratio, ($C.nodes[].loss_ratio), ($E.nodes[].loss_ratio), ($T[].loss_ratio)] | max * 100 | . * 1000 | round / 1000) as $loss |
	"| \($r) | \($n) | \($su | f) (\($S.server_cpu_percent | f)) | \($cu | map(f) | join(" / ")) | " +
	"\($cu[1] / $su | x), \($cu[2] / $su | x) | \($cu[1] / $cu[0] | x), \($cu[2] / $cu[0] | x) | " +
	"\($C.nodes[0].server_cpu_percent - $S.server_cpu_percent | f) | \($eu | map(f) | join(" / ")) | " +
	"\($eu[0] / $su | x), \($eu[1] / $su | x) | \($tu | f) | \(q($cu[1]; $tu) | x), \(q($cu[2]; $tu) | x) | " +
	"\($E.nodes[2].server_cpu_percent | f) | \($loss) |"'
}

echo "| round | N/node | single µs/pkt (CPU %) | cluster3: A / B / C µs/pkt | B, C ÷ single | B, C ÷ A | A − single CPU % | edges: B / C µs/pkt | B, C ÷ single | 3 singles on the core: mean µs/pkt | cluster3 B, C ÷ that | origin A CPU % (ingest + 2 relays) | max loss % |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
	for n in $N_LIST; do
		row "$r" "$n"
	done
done
echo
echo "µs/pkt: the node's CPU (its process CPU clock) ÷ $DENOM egress packets in the same window."
