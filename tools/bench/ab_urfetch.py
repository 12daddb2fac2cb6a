#!/usr/bin/env python3
# tools/bench/ab_urfetch.py - two urfetch builds against the same loopback nginx, alternating
# run by run (ABBA...), medians of wall time and client CPU per request (wait4 of each run).
# For before/after figures of a change (docs/benchmarks.md):
#
#   tools/bench/ab_urfetch.py BEFORE/urfetch AFTER/urfetch [-n 10000] [--rounds 6] [--https]
#
# (Copy a build directory aside before the change: cp -a build-release /tmp/before.)
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fetch  # noqa: E402  (its Nginx class)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("-j", type=int, default=64)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--https", action="store_true")
    a = p.parse_args()
    os.environ["PATH"] += ":/usr/sbin"
    tmp = tempfile.mkdtemp(prefix="urio-ab-")
    os.chmod(tmp, 0o755)
    ngx = fetch.Nginx(tmp)
    try:
        url = (f"https://127.0.0.1:{ngx.tls_port}/1k.bin" if a.https
               else f"http://127.0.0.1:{ngx.port}/1k.bin")
        urls = fetch.url_file(tmp, "urls", url, a.n)
        extra = ["--cacert", ngx.ca] if a.https else []
        bins = [("before", a.before), ("after", a.after)]
        res = {k: [] for k, _ in bins}
        for r in range(a.rounds):
            for k, b in (bins if r % 2 == 0 else bins[::-1]):
                t0 = time.perf_counter()
                pr = subprocess.Popen([b, "-s", "-j", str(a.j), "-i", urls, "-o", "/dev/null"]
                                      + extra)
                _, st, ru = os.wait4(pr.pid, 0)
                if st != 0:
                    sys.exit(f"{b} failed: {st}")
                res[k].append((time.perf_counter() - t0,
                               (ru.ru_utime + ru.ru_stime) / a.n * 1e6))
        print(f"{'https' if a.https else 'http'} keep-alive, {a.n} GETs, {a.j} in flight, "
              f"{a.rounds} alternating rounds, load {os.getloadavg()[0]:.1f}")
        for k, v in res.items():
            print(f"{k:7} wall {statistics.median(x[0] for x in v):.3f} s   CPU "
                  f"{statistics.median(x[1] for x in v):.1f} us/req")
    finally:
        ngx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
