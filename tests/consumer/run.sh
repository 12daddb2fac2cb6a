#!/usr/bin/env bash
# Builds tests/consumer as a separate meson project with urio as its subproject (a symlink to
# this checkout), then runs it. Usage: run.sh SOURCE_ROOT
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src/tests/consumer/meson.build" "$src/tests/consumer/main.c" "$work/"
mkdir "$work/subprojects"
ln -s "$src" "$work/subprojects/urio"
# Forced fallback: even with urio installed on the host, the subproject is what is tested.
meson setup "$work/build" "$work" --force-fallback-for=urio \
	-Durio:tests=false -Durio:bench=false >"$work/setup.log" 2>&1 ||
	{ cat "$work/setup.log"; exit 1; }
ninja -C "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
