#!/usr/bin/env python3
# tools/bench/cg_urfetch.py - urfetch's user-space instructions per request, from callgrind, for
# development on a shared machine (instruction counts do not depend on the load; wall times do).
# Each urfetch binary fetches N and 2N GETs of the 1 KiB file from the same loopback nginx as
# fetch.py's, under valgrind --tool=callgrind; the difference divided by N is the cost of one
# request with start-up taken out, and what is left at N requests is start-up (over HTTPS, the
# j handshakes that open the connections at once). See docs/benchmarks.md, "Session 4 of issue 8".
#
#   tools/bench/cg_urfetch.py URFETCH... [-n 1000] [-j 64] [--https] [--keep DIR]
#
# A build with symbols reads best in callgrind_annotate:
#   meson setup build-prof -Dbuildtype=release -Ddebug=true -Dtests=false
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fetch  # noqa: E402  (its Nginx class)


def instructions(path):
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"{path}: no totals")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("urfetch", nargs="+")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("-j", type=int, default=64)
    p.add_argument("--https", action="store_true")
    p.add_argument("--keep", help="a directory for the callgrind.out files (else deleted)")
    a = p.parse_args()
    os.environ["PATH"] += ":/usr/sbin"
    tmp = tempfile.mkdtemp(prefix="urio-cg-")
    os.chmod(tmp, 0o755)
    out = a.keep or tmp
    os.makedirs(out, exist_ok=True)
    ngx = fetch.Nginx(tmp)
    try:
        url = (f"https://127.0.0.1:{ngx.tls_port}/1k.bin" if a.https
               else f"http://127.0.0.1:{ngx.port}/1k.bin")
        extra = ["--cacert", ngx.ca] if a.https else []
        print(f"{'https' if a.https else 'http'} keep-alive, {a.j} in flight, "
              f"callgrind at {a.n} and {2 * a.n} GETs")
        for i, b in enumerate(a.urfetch):
            ir = []
            for n in (a.n, 2 * a.n):
                urls = fetch.url_file(tmp, f"urls-{n}", url, n)
                cg = os.path.join(out, f"callgrind.out.{i}.{n}")
                r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}",
                                    b, "-s", "-j", str(a.j), "-i", urls, "-o", "/dev/null"]
                                   + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if r.returncode != 0:
                    sys.exit(f"{b} failed:\n{r.stderr.decode(errors='replace')[-2000:]}")
                ir.append(instructions(cg))
            per = (ir[1] - ir[0]) / a.n
            print(f"{b}: {per:,.0f} instructions per request, start-up "
                  f"{(ir[0] - per * a.n) / 1e6:,.1f} M")
    finally:
        ngx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
