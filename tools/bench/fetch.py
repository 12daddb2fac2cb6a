#!/usr/bin/env python3
# tools/bench/fetch.py - urfetch against curl, aiohttp and wrk on loopback nginx; urio's server
# against nginx; requests/s against requests in flight (a gnuplot PNG). Not a test: it prints
# figures and ratios measured in the same run (docs/benchmarks.md, "HTTP").
#
#   tools/bench/fetch.py [--urfetch build-release/tools/urfetch/urfetch] [-n 10000] [-j 64]
#                        [--rounds 3] [--plot docs/fetch-concurrency.png] [--quick]
#
# It starts nginx (one worker, its own config in a temp dir, free ports, a 1 KiB file, HTTP and
# HTTPS with a CA made by openssl), runs each client in alternation --rounds times, keeps the
# median of each, and stops nginx. Client CPU and peak RSS come from wait4(2) of each client.
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SYS_PY = "/usr/bin/python3"  # python3-aiohttp is the distribution's


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc=None, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} never opened")


def measure(cmd, **kw):
    """Runs cmd; returns (wall s, cpu s, peak RSS KiB, returncode, stdout)."""
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, **kw)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.stderr.write(f"fetch.py: {cmd[0]} exited {p.returncode}: "
                         f"{err.decode(errors='replace')[:400]}\n")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode, out


class Nginx:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.tls_port = free_port()
        www = os.path.join(tmp, "www")
        os.makedirs(www)
        with open(os.path.join(www, "1k.bin"), "wb") as f:
            f.write(bytes((i * 7) % 251 for i in range(1024)))
        self.ca = os.path.join(tmp, "ca.pem")
        crt, key = os.path.join(tmp, "leaf.pem"), os.path.join(tmp, "leaf.key")
        cakey = os.path.join(tmp, "ca.key")
        q = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", cakey, "-out", self.ca,
                        "-days", "1", "-subj", "/CN=bench CA"], **q)
        csr = os.path.join(tmp, "leaf.csr")
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"], **q)
        ext = os.path.join(tmp, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", cakey,
                        "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext], **q)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    sendfile on;
    open_file_cache max=16;
    server {{
        listen 127.0.0.1:{self.port} reuseport backlog=4096;
        listen 127.0.0.1:{self.tls_port} ssl reuseport backlog=4096;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_session_cache shared:S:1m;
        root {www};
    }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", tmp, "-c", conf, "-e", f"{tmp}/error.log"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        wait_port(self.tls_port, self.proc)

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def url_file(tmp, name, url, n):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for i in range(n):
            f.write(f"{url}\n")
    return path


def curl_config(tmp, name, url, n):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for _ in range(n):
            f.write(f'url = "{url}"\noutput = "/dev/null"\n')
    return path


def clients(args, tmp, url, n, jobs, ca=None, close=False):
    """The three clients' commands for n GETs of url, jobs in flight."""
    urls = url_file(tmp, f"urls-{n}", url, n)
    cfg = curl_config(tmp, f"curl-{n}", url, n)
    uf = [args.urfetch, "-s", "-j", str(jobs), "-i", urls, "-o", "/dev/null"]
    cu = ["curl", "-s", "--parallel", "--parallel-max", str(jobs), "-K", cfg]
    ai = [SYS_PY, os.path.join(os.path.dirname(__file__), "aiohttp_gather.py"), urls,
          "-j", str(jobs)]
    if ca:
        uf += ["--cacert", ca]
        cu += ["--cacert", ca]
        ai += ["--cafile", ca]
    if close:
        uf += ["--no-keepalive"]
        cu += ["-H", "Connection: close"]
        ai += ["--close"]
    out = {"urfetch": uf, "curl": cu}
    if not args.no_aiohttp:
        out["aiohttp"] = ai
    return out


def wrk_rps(url, conns, secs, threads=1, extra=()):
    r = subprocess.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{secs}s", *extra, url],
                       capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError("no Requests/sec in wrk's output:\n" + r.stdout)


def wrk_cpu(url, conns, n_est_secs, extra=()):
    """wrk's own CPU per request: run it under wait4 for a fixed time, divide by its requests."""
    p = subprocess.Popen(["wrk", "-t", "1", "-c", str(conns), "-d", f"{n_est_secs}s", *extra,
                          url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()  # wrk writes little: a pipe cannot fill
    _, _, ru = os.wait4(p.pid, 0)
    reqs = None
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "requests" and parts[0].isdigit():
            reqs = int(parts[0])
        if line.startswith("Requests/sec:"):
            rps = float(line.split()[1])
    return rps, (ru.ru_utime + ru.ru_stime) / max(reqs or 1, 1), ru.ru_maxrss


def compare(args, title, cmds, n, wrk_url, wrk_extra=()):
    res = {k: [] for k in cmds}
    for _ in range(args.rounds):  # alternating: every client once per round
        for name, cmd in cmds.items():
            wall, cpu, rss, rc, _ = measure(cmd)
            if rc == 0:
                res[name].append((wall, cpu, rss))
    rps, wcpu, wrss = wrk_cpu(wrk_url, args.jobs, args.wrk_secs, wrk_extra)
    print(f"\n## {title}: {n} GETs of 1 KiB, {args.jobs} in flight, median of {args.rounds}")
    print(f"{'client':10} {'wall s':>8} {'req/s':>9} {'CPU us/req':>11} {'peak RSS MiB':>13}"
          f" {'wall vs urfetch':>16}")
    uf = statistics.median(w for w, _, _ in res["urfetch"]) if res["urfetch"] else float("nan")
    rows = {}
    for name, runs in res.items():
        if not runs:
            print(f"{name:10} failed")
            continue
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        rss = max(r[2] for r in runs)
        rows[name] = (wall, cpu, rss)
        print(f"{name:10} {wall:8.3f} {n / wall:9.0f} {cpu / n * 1e6:11.1f} {rss / 1024:13.1f}"
              f" {wall / uf:15.2f}x")
    print(f"{'wrk -c' + str(args.jobs):10} {n / rps:8.3f} {rps:9.0f} {wcpu * 1e6:11.1f}"
          f" {wrss / 1024:13.1f} {n / rps / uf:15.2f}x   (the server's ceiling)")
    return rows


def server_side(args, tmp, nginx):
    """wrk -c64 against urio's server and against nginx, one worker each, 1 KiB responses."""
    www = os.path.join(tmp, "www")
    port = free_port()
    srv = subprocess.Popen([args.urfetch, "--serve", str(port), "--serve-dir", www,
                            "--serve-threads", "1"], stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, srv)
        rows = []
        for _ in range(args.rounds):
            rows.append((wrk_rps(f"http://127.0.0.1:{port}/bytes/1024", args.jobs, args.wrk_secs),
                         wrk_rps(f"http://127.0.0.1:{port}/static/1k.bin", args.jobs,
                                 args.wrk_secs),
                         wrk_rps(f"http://127.0.0.1:{nginx.port}/1k.bin", args.jobs,
                                 args.wrk_secs)))
    finally:
        srv.stdin.close()
        srv.wait(10)
    mem = statistics.median(r[0] for r in rows)
    fil = statistics.median(r[1] for r in rows)
    ngx = statistics.median(r[2] for r in rows)
    print(f"\n## Server: wrk -t1 -c{args.jobs} -d{args.wrk_secs}s, 1 KiB responses, one worker"
          f" each, median of {args.rounds}")
    print(f"urio server, body from memory   {mem:9.0f} req/s  {mem / ngx:.2f}x nginx")
    print(f"urio server, file via the ring  {fil:9.0f} req/s  {fil / ngx:.2f}x nginx")
    print(f"nginx (sendfile, open_file_cache) {ngx:7.0f} req/s")


def concurrency_plot(args, tmp, nginx):
    url = f"http://127.0.0.1:{nginx.port}/1k.bin"
    levels = [1, 2, 4, 8, 16, 32, 64, 128, 256]
    data = os.path.join(tmp, "conc.dat")
    print(f"\n## requests/s against requests in flight ({args.plot_n} GETs each, median of "
          f"{args.rounds})")
    print(f"{'in flight':>9} {'urfetch':>9} {'curl':>9} {'aiohttp':>9}")
    with open(data, "w") as f:
        for j in levels:
            cmds = clients(args, tmp, url, args.plot_n, j)
            vals = []
            for name in ("urfetch", "curl", "aiohttp"):
                if name not in cmds:
                    vals.append(float("nan"))
                    continue
                walls = [measure(cmds[name])[0] for _ in range(args.rounds)]
                vals.append(args.plot_n / statistics.median(walls))
            print(f"{j:9} {vals[0]:9.0f} {vals[1]:9.0f} {vals[2]:9.0f}")
            f.write(f"{j} {vals[0]:.0f} {vals[1]:.0f} {vals[2]:.0f}\n")
    if shutil.which("gnuplot"):
        script = f"""
set terminal pngcairo size 800,500 noenhanced
set output '{args.plot}'
set title 'GETs of a 1 KiB file from loopback nginx: requests/s against requests in flight'
set xlabel 'requests in flight'
set ylabel 'requests/s'
set logscale x 2
set key top left
set grid
plot '{data}' using 1:2 with linespoints title 'urfetch', \\
     '' using 1:3 with linespoints title 'curl --parallel', \\
     '' using 1:4 with linespoints title 'aiohttp gather'
"""
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if r.returncode != 0:  # gnuplot-nox may lack cairo: fall back to the png terminal
            script = script.replace("pngcairo", "png")
            subprocess.run(["gnuplot"], input=script, text=True, check=True)
        print(f"plot written to {args.plot}")


def main():
    sys.stdout.reconfigure(line_buffering=True)
    p = argparse.ArgumentParser()
    p.add_argument("--urfetch", default="build-release/tools/urfetch/urfetch")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("-j", "--jobs", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--wrk-secs", type=int, default=5)
    p.add_argument("--plot", default="docs/fetch-concurrency.png")
    p.add_argument("--plot-n", type=int, default=2000)
    p.add_argument("--no-aiohttp", action="store_true")
    p.add_argument("--quick", action="store_true", help="one round, no plot")
    p.add_argument("--only", choices=["http", "https", "close", "server", "plot"])
    args = p.parse_args()
    if args.quick:
        args.rounds, args.wrk_secs = 1, 2
    args.urfetch = os.path.abspath(args.urfetch)
    for tool in ("nginx", "curl", "wrk", "openssl"):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            sys.exit(f"fetch.py: {tool} is missing (tools/dev.sh bench installs it)")
    os.environ["PATH"] += ":/usr/sbin"
    tmp = tempfile.mkdtemp(prefix="urio-bench-")
    os.chmod(tmp, 0o755)  # nginx's workers run as another user when started by root
    nginx = Nginx(tmp)
    try:
        http = f"http://127.0.0.1:{nginx.port}/1k.bin"
        https = f"https://127.0.0.1:{nginx.tls_port}/1k.bin"
        print(f"# urfetch {subprocess.run([args.urfetch, '--version'], capture_output=True, text=True).stdout.strip()}"
              f", nginx 1 worker, {os.cpu_count()} CPUs")
        if args.only in (None, "http"):
            compare(args, "HTTP keep-alive", clients(args, tmp, http, args.n, args.jobs), args.n,
                    http)
        if args.only in (None, "https"):
            compare(args, "HTTPS keep-alive",
                    clients(args, tmp, https, args.n, args.jobs, ca=nginx.ca), args.n, https)
        if args.only in (None, "close"):
            compare(args, "HTTPS, a new connection per request",
                    clients(args, tmp, https, 1000, args.jobs, ca=nginx.ca, close=True), 1000,
                    https, ("-H", "Connection: close"))
        if args.only in (None, "server"):
            server_side(args, tmp, nginx)
        if args.only in (None, "plot") and not args.quick:
            concurrency_plot(args, tmp, nginx)
    finally:
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
