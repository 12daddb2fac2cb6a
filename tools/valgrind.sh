#!/usr/bin/env bash
# tools/valgrind.sh - meson test wrapper: runs a test under valgrind's memcheck, following
# Criterion's worker processes, and fails on any memory error or definite/indirect leak in any
# of them. Criterion ignores its workers' exit codes, so valgrind's verdicts are read from its
# per-process logs instead of trusted to --error-exitcode.
set -u
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
valgrind --trace-children=yes --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --log-file="$logs/vg.%p" "$@"
rc=$?
bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs"/vg.* 2>/dev/null || true)
if [ -n "$bad" ]; then
	for f in $bad; do
		echo "valgrind found errors in process ${f##*.}:" >&2
		grep -v '^==[0-9]*== *$' "$f" | sed -n '/ERROR SUMMARY/q;p' | tail -n 60 >&2
	done
	exit 99
fi
exit $rc
