#!/usr/bin/env bash
# Build one command with visible progress:
#
#   .ci/build.sh bin/fanout ./cmd/fanout
#
# The first build on a machine compiles go-astiav's cgo bindings to FFmpeg
# (bridge/transcode), which takes minutes on a small machine while the
# compiler prints nothing. So the build runs with -v (each package is named
# as it is compiled; a cached build names none), and while it runs a line
# every 30 s, from the 10th second on, says it is still going and why.
# GO picks the go binary (default go); extra arguments go to `go build`.
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 OUTPUT PACKAGE [go build flags...]" >&2
	exit 2
fi
out=$1
pkg=$2
shift 2
go=${GO:-go}

echo "build: $out from $pkg"
(
	n=0
	while sleep 1; do
		n=$((n + 1))
		if [ "$n" -ge 10 ] && [ $(((n - 10) % 30)) -eq 0 ]; then
			echo "build: still compiling $out (${n}s); the first build compiles the cgo FFmpeg" \
				"bindings (go-astiav), a few minutes on 2 cores; later builds take seconds"
		fi
	done
) &
ticker=$!
trap 'kill "$ticker" 2>/dev/null || true' EXIT

start=$SECONDS
"$go" build -v "$@" -o "$out" "$pkg"
echo "build: $out ready in $((SECONDS - start))s"
