#!/usr/bin/env bash
# Refreshes the vendored axe-core used by the browser suite (no Node is needed to build or
# test Docobo; this script needs npm only when updating). Pinned version and checksum:
set -euo pipefail
version=4.14.1
sha256=29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c
cd "$(dirname "$0")"
tmp=$(mktemp -d)
(cd "$tmp" && npm pack "axe-core@$version" >/dev/null && tar xzf axe-core-*.tgz)
echo "$sha256  $tmp/package/axe.min.js" | sha256sum -c -
cp "$tmp/package/axe.min.js" axe.min.js
cp "$tmp/package/LICENSE" axe-LICENSE.txt
rm -rf "$tmp"
