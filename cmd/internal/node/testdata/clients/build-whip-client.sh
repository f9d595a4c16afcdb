#!/usr/bin/env bash
# Build Meetecho's simple-whip-client (GPL-3.0, a test tool, not part of Fanout) into build/
# (git-ignored) and print the binary's path. Its source is not in this repository: it is
# taken from the project's shared/ folder, which lies beside the clone on every machine of
# the project and on CI (shared/clients/simple-whip-client, read-only), or from
# $FANOUT_WHIP_CLIENT_SRC. Cached: a stamp holding the source's checksum skips the build when
# nothing changed, so the tests call this every run at no cost. The build happens in a copy.
# Needs the GStreamer/libsoup3/json-glib headers (.ci/deps.sh test).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../../../.." && pwd)"
# Beside the clone; for a git worktree, beside the main checkout (the common .git's parent).
common="$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
src=""
for c in ${FANOUT_WHIP_CLIENT_SRC:-} "$repo/../shared/clients/simple-whip-client" \
	${common:+"$(dirname "$common")/../shared/clients/simple-whip-client"}; do
	if [ -f "$c/src/whip-client.c" ]; then
		src="$(cd "$c" && pwd)"
		break
	fi
done
if [ -z "$src" ]; then
	echo "build-whip-client: no simple-whip-client source in shared/clients beside the clone" >&2
	exit 4
fi
out="$here/build"
sum="$(cd "$src" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ -x "$out/whip-client" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$sum" ]; then
	echo "$out/whip-client"
	exit 0
fi
for pc in gstreamer-webrtc-1.0 gstreamer-sdp-1.0 gstreamer-video-1.0 libsoup-3.0 json-glib-1.0; do
	if ! pkg-config --exists "$pc"; then
		echo "build-whip-client: pkg-config has no $pc (run .ci/deps.sh test)" >&2
		exit 3
	fi
done
tmp="$(mktemp -d "$here/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp -r "$src/." "$tmp/"
chmod -R u+w "$tmp" # shared/ is laid read-only
make -s -C "$tmp" >"$tmp/make.log" 2>&1 || { cat "$tmp/make.log" >&2; exit 1; }
mkdir -p "$out"
mv "$tmp/whip-client" "$out/whip-client.new"
mv "$out/whip-client.new" "$out/whip-client"
echo "$sum" >"$out/stamp"
echo "$out/whip-client"
