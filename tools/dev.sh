#!/usr/bin/env bash
# tools/dev.sh - the developer's entry point.
#
#   tools/dev.sh test      install what is missing, build, run every test (plain and ASan/UBSan
#                          builds, the suites under valgrind, the fault-injection passes, the
#                          ThreadSanitizer pass and each fuzz target for UR_FUZZ_SECS, default 30 s);
#                          ends with "N passed, N failed"
#   tools/dev.sh build     install what is missing and build (build/)
#   tools/dev.sh asan      the ASan/UBSan build and its tests only (build-asan/)
#   tools/dev.sh valgrind  the suites under valgrind only
#   tools/dev.sh bench     a release build and every benchmark in tools/bench (installs nginx,
#                          curl, wrk, aiohttp and gnuplot for tools/bench/fetch.py)
#   tools/dev.sh demo      build and run `urfetch --demo` (loopback HTTP and HTTPS, no network)
#   tools/dev.sh fault     the suites under fault injection only (build-fault/; seeds in
#                          UR_FAULT_SEEDS, default "1 2 3"; docs/reliability.md)
#   tools/dev.sh tsan      the cross-thread suite under ThreadSanitizer only (build-tsan/)
#   tools/dev.sh format    clang-format every C file in place
#   tools/dev.sh fuzz [S]  libFuzzer build (clang, build-fuzz/) and each fuzz target for S seconds
#                          (default 30); new inputs go to build-fuzz/corpus/, crashes to
#                          build-fuzz/artifacts/ (copy those into tests/fuzz/corpus/<target>/)
#
# Needs Debian or Ubuntu; as root it installs missing packages with apt-get, otherwise it says
# which ones to install. Set UR_SKIP_VALGRIND=1, UR_SKIP_FAULT=1, UR_SKIP_TSAN=1 or UR_SKIP_FUZZ=1 to
# leave that pass out of `test`.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

# clang: to check the other CPU's context switch assembles, and libFuzzer; fio: the anchor of
# bench_file; node-llhttp: llhttp's C sources for the HTTP parser's differential check.
# zlib1g-dev: the HTTP client's gzip/deflate; nginx-light: the HTTP client's tests against nginx.
packages=(gcc clang meson ninja-build pkg-config liburing-dev libssl-dev libcriterion-dev valgrind
	python3 fio openssl node-llhttp zlib1g-dev nginx-light)

# Only the benchmarks need these (tools/bench/fetch.py; libuv for bench_echo).
bench_packages=(nginx-light curl wrk python3-aiohttp gnuplot-nox libuv1-dev)

need_packages() {
	local missing=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "dev.sh: missing packages: ${missing[*]}" >&2
		echo "dev.sh: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "dev.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# setup DIR [meson options...]: configure once, reconfigure when options change.
setup() {
	local dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
}

# Sums what the test runs reported: Criterion's per-suite synthesis where there is one, meson's
# verdict (one test) for everything else. Reads every testlog.json given.
summary() {
	python3 - "$@" <<'PY'
import json, re, sys
passed = failed = skipped = 0
syn = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        t = json.loads(line)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        m = syn.findall(out)
        ok = t["result"] in ("OK", "EXPECTEDFAIL")
        if m:
            tested, passing, failing, crashing = map(int, m[-1])
            passed += passing
            failed += failing + crashing
            if not ok and failing + crashing == 0:
                failed += 1  # the runner itself failed (leak check, valgrind, timeout)
        elif t["result"] == "SKIP":
            skipped += 1
        elif ok:
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
PY
}

run_tests() { # DIR [meson test args...]
	local dir=$1
	shift
	local rc=0
	meson test -C "$dir" --print-errorlogs "$@" || rc=$?
	# meson names the log after the wrapper, if any (testlog-valgrind.sh.json): take the newest.
	local log
	log=$(ls -t "$dir"/meson-logs/testlog*.json 2>/dev/null | head -n 1)
	[ -n "$log" ] && cp "$log" "$logs/$(basename "$dir")$suffix.json"
	return $rc
}

# Fault passes over the suites that make loops (ctx makes none), every class on: a test that
# cannot hold under a class turns that class off for itself (t_fault_unsafe, tests/helpers.h).
# --suite core: the names alone would also pick the example programs of the same name
# (examples/future), which exit non-zero, as they should, on any injected failure.
fault_core_tests=(future loop file socket bufring cancel timer task edges fault limits scope group sendzc
	splice)
fault_spec=all

fault_passes() {
	setup build-fault -Dfault_injection=true -Dbench=false
	local seed
	for seed in ${UR_FAULT_SEEDS:-1 2 3}; do
		echo "dev.sh: fault pass UR_FAULT_SEED=$seed UR_FAULT_RATE=0.1 (a failed test prints its replay)" >&2
		suffix="-fault$seed"
		UR_FAULT_SEED=$seed UR_FAULT_RATE=0.1 UR_FAULT_SPEC=$fault_spec \
			run_tests build-fault --suite core "${fault_core_tests[@]}" || rc=1
		suffix="-fault$seed-proto"
		UR_FAULT_SEED=$seed UR_FAULT_RATE=0.1 UR_FAULT_SPEC=$fault_spec \
			run_tests build-fault --suite proto || rc=1
	done
	suffix=""
}

# ThreadSanitizer: what crosses threads (suite 'threads', a plain program: Criterion cannot start
# under TSan). No suppressions are needed: TSan sees only user threads, and the ring is shared with
# the kernel, not with another thread.
tsan_pass() {
	setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dbench=false
	suffix=""
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_tests build-tsan --suite threads ||
		rc=1
}

# libFuzzer (clang, build-fuzz/): each target for SECS seconds from its seed corpus and what earlier
# runs kept (build-fuzz/corpus/). A crash, leak or sanitizer report fails the pass and leaves the
# input in build-fuzz/artifacts/ (copy it into tests/fuzz/corpus/<target>/ with the fix). Each
# target's verdict goes into the summary as one test (a meson-style log line).
fuzz_targets=(url response request readuntil tls_client)

fuzz_pass() { # SECS
	local secs=$1 t out frc
	local -a dict
	CC=clang setup build-fuzz -Dfuzz=true -Dbench=false
	mkdir -p build-fuzz/artifacts
	rm -f build-fuzz/artifacts/*
	: >"$logs/fuzz$suffix.json"
	for t in "${fuzz_targets[@]}"; do
		case $t in
		url) dict=(-dict=tests/fuzz/url.dict) ;;
		response | request) dict=(-dict=tests/fuzz/http.dict) ;;
		*) dict=() ;; # readuntil, tls_client: binary headers, no dictionary
		esac
		mkdir -p "build-fuzz/corpus/$t"
		echo "dev.sh: fuzzing $t for ${secs}s" >&2
		frc=0
		out=$("build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$secs" "${dict[@]}" \
			-print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" \
			"build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1) || frc=$?
		grep -E '^(Done|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' <<<"$out" >&2 || true
		if [ $frc -ne 0 ] || ls "build-fuzz/artifacts/$t-"* >/dev/null 2>&1; then
			echo "dev.sh: fuzz_$t failed (exit $frc); input in build-fuzz/artifacts/" >&2
			tail -n 40 <<<"$out" >&2
			rc=1
			frc=${frc/#0/1}
		fi
		python3 -c 'import json,sys; print(json.dumps({"name": "fuzz_" + sys.argv[1], "result": "OK" if sys.argv[2] == "0" else "FAIL", "stdout": ""}))' \
			"$t" "$frc" >>"$logs/fuzz$suffix.json"
	done
}

cmd=${1:-test}
logs="$top/build/test-logs"
suffix=""
case "$cmd" in
build)
	need_packages
	setup build
	;;
test | asan | valgrind | fault | tsan)
	need_packages
	setup build
	mkdir -p "$logs"
	rm -f "$logs"/*.json
	rc=0
	if [ "$cmd" = test ]; then
		run_tests build || rc=1
	fi
	if [ "$cmd" = test ] || [ "$cmd" = asan ]; then
		setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			LSAN_OPTIONS=suppressions="$top/tests/lsan.supp":print_suppressions=0 \
			run_tests build-asan || rc=1
	fi
	if [ "$cmd" = valgrind ] || { [ "$cmd" = test ] && [ "${UR_SKIP_VALGRIND:-0}" != 1 ]; }; then
		suffix="-valgrind"
		run_tests build --suite core --wrap="$top/tools/valgrind.sh" --timeout-multiplier 10 || rc=1
	fi
	if [ "$cmd" = fault ] || { [ "$cmd" = test ] && [ "${UR_SKIP_FAULT:-0}" != 1 ]; }; then
		fault_passes
	fi
	if [ "$cmd" = tsan ] || { [ "$cmd" = test ] && [ "${UR_SKIP_TSAN:-0}" != 1 ]; }; then
		tsan_pass
	fi
	if [ "$cmd" = test ] && [ "${UR_SKIP_FUZZ:-0}" != 1 ]; then
		fuzz_pass "${UR_FUZZ_SECS:-30}"
	fi
	summary "$logs"/*.json || rc=1
	exit $rc
	;;
bench)
	packages+=("${bench_packages[@]}")
	need_packages
	setup build-release -Dbuildtype=release
	for b in build-release/tools/bench/bench_*; do
		[ -x "$b" ] && "$b"
	done
	python3 tools/bench/fetch.py --urfetch build-release/tools/urfetch/urfetch
	;;
fuzz)
	need_packages
	suffix=""
	mkdir -p "$logs"
	rc=0
	fuzz_pass "${2:-30}"
	exit $rc
	;;
format)
	git ls-files '*.c' '*.h' | xargs clang-format -i
	;;
demo)
	need_packages
	setup build
	exec build/tools/urfetch/urfetch --demo
	;;
*)
	sed -n '2,24p' "$0"
	exit 2
	;;
esac
