#!/usr/bin/env bash
# tools/valgrind.sh - meson test wrapper: runs a test under valgrind's memcheck, following
# Criterion's worker processes, failing on any error or leak.
exec valgrind --quiet --trace-children=yes --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect "$@"
