#!/bin/sh
# Refresh the vendored asciinema-player: fetch the npm package at $1 (default: the version in
# README.md), copy the files the console serves and the licences, rewrite SHA256SUMS.
#   ./refresh.sh 3.18.0
# Then update the version in README.md and in crates/jitgate-server/src/console/assets.rs,
# and run the console e2e tests (e2e/console, npm test).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
version=${1:-$(sed -n 's/^Version: \([0-9.]*\).*/\1/p' "$here/README.md")}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "asciinema-player@$version" >/dev/null
tar xzf "asciinema-player-$version.tgz"
cp package/dist/bundle/asciinema-player.min.js package/dist/bundle/asciinema-player.css \
   package/LICENSE "$here/"
# The bundle compiles in its one dependency, solid-js (MIT): keep that notice too.
solid=$(node -p 'require("./package/package.json").dependencies["solid-js"]')
rm -rf package
npm pack --silent "solid-js@$solid" >/dev/null
tar xzf solid-js-*.tgz package/LICENSE
cp package/LICENSE "$here/LICENSE.solid-js"
cd "$here"
sha256sum asciinema-player.min.js asciinema-player.css LICENSE LICENSE.solid-js > SHA256SUMS
echo "asciinema-player $version vendored (solid-js $solid); check: sha256sum -c SHA256SUMS"
