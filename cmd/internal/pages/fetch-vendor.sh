#!/usr/bin/env bash
# Fetches the third-party players the pages use, at pinned versions, with
# npm into a temporary folder, and copies their minified builds and licenses
# into www/players/js/vendor/. The fetched files are committed, so building
# Fanout never needs npm or the network; run this only to change a version:
#
#   ./cmd/internal/pages/fetch-vendor.sh
#
# No package.json or lockfile is written into the repository.
set -euo pipefail

MPEGTS_VERSION=1.8.2
HLS_VERSION=1.7.4

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/www/players/js/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

npm install --prefix "$tmp" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
	"mpegts.js@$MPEGTS_VERSION" "hls.js@$HLS_VERSION" >/dev/null

mods="$tmp/node_modules"
rm -rf "$out"
mkdir -p "$out/mpegts" "$out/hls"
cp "$mods/mpegts.js/dist/mpegts.js" "$out/mpegts/mpegts.min.js"
cp "$mods/mpegts.js/dist/mpegts.js.LICENSE.txt" "$out/mpegts/THIRD-PARTY-NOTICES.txt"
cp "$mods/mpegts.js/LICENSE" "$out/mpegts/LICENSE"
cp "$mods/hls.js/dist/hls.min.js" "$out/hls/hls.min.js"
cp "$mods/hls.js/LICENSE" "$out/hls/LICENSE"

# The builds point at source maps that are not copied; drop that comment so
# browsers do not ask for them.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/mpegts/mpegts.min.js" "$out/hls/hls.min.js"

{
	echo "# Written by cmd/internal/pages/fetch-vendor.sh; do not edit."
	echo "mpegts.js $MPEGTS_VERSION"
	echo "hls.js $HLS_VERSION"
	(cd "$out" && sha256sum mpegts/* hls/*)
} >"$out/VERSIONS"
echo "vendor files in $out:"
cat "$out/VERSIONS"
