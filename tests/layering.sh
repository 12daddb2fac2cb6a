#!/bin/sh
# tests/layering.sh SRCROOT - the layers stay apart: proto/ uses core's public API only (never
# core's internal header or the ring), and core/ knows nothing of proto's headers.
cd "$1" || exit 1
bad=0
if grep -nE '#include *[<"](.*/)?(internal\.h|liburing\.h|ctx\.h|stack\.h)[>"]' proto/*.c proto/*.h 2>/dev/null; then
	echo "proto/ must not include core's private headers or liburing" >&2
	bad=1
fi
if grep -nE '#include *[<"](urio/)?(stream|tls|net|resolve|url|http1?|server)\.h[>"]' core/*.c core/*.h 2>/dev/null; then
	echo "core/ must not include proto's headers" >&2
	bad=1
fi
exit $bad
