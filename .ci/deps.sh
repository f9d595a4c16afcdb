#!/usr/bin/env bash
# Install the Debian packages a Fanout task needs, and only those that are missing.
#
#   .ci/deps.sh run    what building and running bin/fanout needs (FFmpeg dev headers for cgo)
#   .ci/deps.sh test   what the test suite needs (FFmpeg, Chromium, redis-server, nftables,
#                      iproute2, the libav*/libopus headers for cgo, pkg-config)
#   .ci/deps.sh generate   what `go generate` needs for the eBPF programs (clang, llvm, libbpf)
#
# Idempotent: every package is checked with dpkg-query first; `apt-get update` and
# `apt-get install` run only when something is missing. Works as root without sudo
# (CI), and falls back to sudo for a non-root developer.
set -euo pipefail

# The AAC<->Opus transcoder (bridge/transcode) is cgo on FFmpeg 5.1: building fanout needs
# its headers. `go build -tags notranscode` needs none of these.
RUN_PKGS=(pkg-config libavcodec-dev libavformat-dev libavutil-dev libswresample-dev
	libavfilter-dev libswscale-dev libavdevice-dev)
TEST_PKGS=(
	ffmpeg            # RTMP push, HTTP-FLV/HLS probes (ffmpeg, ffprobe)
	chromium          # headless browser tests through the built-in pages
	redis-server      # cluster registry tests
	nftables          # packet loss in network namespaces (this kernel has no netem)
	iproute2          # ip netns, tc
	libavcodec-dev    # cgo headers for the AAC<->Opus transcoder
	libavformat-dev
	libavutil-dev
	libswresample-dev
	libavfilter-dev   # go-astiav links these through pkg-config as well
	libswscale-dev
	libavdevice-dev
	libopus-dev
	libopusfile-dev
	pkg-config
	netcat-openbsd    # the spec's curl + nc connectivity check, run verbatim in a test
	curl
)
GEN_PKGS=(clang llvm libbpf-dev) # bpf2go (go generate ./bpf/...)

need_go() {
	if ! command -v go >/dev/null 2>&1; then
		echo "deps: Go is not on PATH (expected /usr/local/go/bin/go); install Go >= the version in go.mod" >&2
		exit 1
	fi
	echo "deps: $(go version)"
}

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

ensure() {
	local what=$1
	shift
	local missing=()
	local p
	for p in "$@"; do
		installed "$p" || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "deps($what): all ${#@} packages already installed"
		return 0
	fi

	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			echo "deps($what): missing ${missing[*]} and not root (no sudo): install them by hand" >&2
			exit 1
		fi
	fi

	echo "deps($what): installing ${#missing[@]} missing package(s): ${missing[*]}"
	local start=$SECONDS
	local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600)
	"${sudo[@]}" "${apt[@]}" update
	"${sudo[@]}" "${apt[@]}" install -y --no-install-recommends "${missing[@]}"
	for p in "${missing[@]}"; do
		if ! installed "$p"; then
			echo "deps($what): $p is still not installed after apt-get install" >&2
			exit 1
		fi
	done
	echo "deps($what): installed ${missing[*]} in $((SECONDS - start))s"
}

case "${1:-test}" in
run)
	need_go
	if [ ${#RUN_PKGS[@]} -gt 0 ]; then ensure run "${RUN_PKGS[@]}"; else echo "deps(run): nothing beyond Go"; fi
	;;
test)
	need_go
	ensure test "${TEST_PKGS[@]}"
	;;
generate)
	need_go
	ensure generate "${GEN_PKGS[@]}"
	;;
*)
	echo "usage: $0 run|test|generate" >&2
	exit 2
	;;
esac
