#!/usr/bin/env bash
# Install the Debian packages a Fanout task needs, and only those that are missing.
#
#   .ci/deps.sh run    what building and running bin/fanout needs (the FFmpeg dev headers
#                      go-astiav links through pkg-config, for the cgo transcoder)
#   .ci/deps.sh test   the run packages plus the tools the tests start: ffmpeg/ffprobe,
#                      Chromium, nft, ip, nc, curl, and the outside WebRTC clients of the
#                      interop tests (GStreamer + simple-whip-client's build deps, aiortc,
#                      Firefox ESR, and puppeteer-core from npm, pinned, into a git-ignored
#                      folder of the repo), and redis-server for the cluster tests
#   .ci/deps.sh generate   what `go generate` needs for the eBPF programs (clang, llvm, libbpf)
#
# Only what something uses is listed: each test tool below names its users.
# libopus*-dev are not needed: nothing includes opus headers; FFmpeg's libavcodec brings
# the libopus runtime, which the transcoder and `ffmpeg -c:a libopus` use.
#
# Idempotent: every package is checked with dpkg-query first; `apt-get update` and
# `apt-get install` run only when something is missing. Works as root without sudo
# (CI), and falls back to sudo for a non-root developer.
set -euo pipefail

# The AAC<->Opus transcoder (bridge/transcode) is cgo on FFmpeg 5.1 through go-astiav, whose
# `#cgo pkg-config:` lines name libavcodec, libavformat, libavutil, libavdevice, libavfilter
# and libswscale; their .pc files also require libswresample (listed) and libpostproc (which
# apt installs with libavfilter-dev). `go build -tags notranscode` needs none of these.
RUN_PKGS=(pkg-config libavcodec-dev libavformat-dev libavutil-dev libswresample-dev
	libavfilter-dev libswscale-dev libavdevice-dev)
# The tests also compile the cgo packages, so `test` installs RUN_PKGS too. od (coreutils),
# unshare (util-linux) and bash are part of every Debian system.
TEST_PKGS=(
	ffmpeg            # ffmpeg, ffprobe: RTMP push, HTTP-FLV/HLS probes, test media (bridge, cmd/fanout, bench)
	chromium          # headless browser tests through the built-in pages (cmd/fanout)
	nftables          # nft: packet loss in network namespaces, this kernel has no netem (cmd/fanout)
	iproute2          # ip netns, ip link: the namespace tests (cmd/fanout, bpf)
	netcat-openbsd    # nc: the README's curl + nc connectivity check, run verbatim (cmd/fanout)
	curl              # the same check's WHIP POST
	# Outside WebRTC stacks, the interop tests (cmd/internal/node clients_*_test.go):
	# Meetecho's simple-whip-client (GStreamer webrtcbin + libnice), built from source by
	# cmd/internal/node/testdata/clients/build-whip-client.sh against these headers...
	build-essential libgstreamer1.0-dev libgstreamer-plugins-bad1.0-dev libsoup-3.0-dev libjson-glib-dev
	# ...and the elements its pipelines use (x264enc is in -ugly, webrtcbin in -bad, nicesrc in -nice)
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
	gstreamer1.0-nice
	python3-aiortc    # aiortc publisher and players, run by /usr/bin/python3
	firefox-esr       # Firefox through the built-in pages, driven by puppeteer-core (npm, pinned)
	redis-server      # the cluster registry's tests start their own on a loopback port (control/cluster, cmd/internal/node cluster_test.go)
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

# npm_ci installs the pinned npm packages of DIR (its committed package-lock.json) into
# DIR/node_modules (git-ignored), once: again only when the lock file changed.
npm_ci() {
	local dir
	dir="$(cd "$(dirname "$0")/.." && pwd)/$1"
	if [ -f "$dir/node_modules/.package-lock.json" ] && cmp -s "$dir/package-lock.json" "$dir/node_modules/.fanout-lock"; then
		echo "deps(npm): $1 already installed"
		return 0
	fi
	(cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts && cp package-lock.json node_modules/.fanout-lock)
	echo "deps(npm): installed $1"
}

case "${1:-test}" in
run)
	need_go
	if [ ${#RUN_PKGS[@]} -gt 0 ]; then ensure run "${RUN_PKGS[@]}"; else echo "deps(run): nothing beyond Go"; fi
	;;
test)
	need_go
	ensure test "${RUN_PKGS[@]}" "${TEST_PKGS[@]}"
	# Node.js for puppeteer-core: any install that brings npm will do (a NodeSource nodejs
	# bundles npm and conflicts with Debian's npm package), so Debian's only when absent.
	if ! command -v npm >/dev/null 2>&1; then ensure test nodejs npm; fi
	npm_ci cmd/internal/node/testdata/npm
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
