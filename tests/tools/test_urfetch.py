#!/usr/bin/env python3
# tests/tools/test_urfetch.py URFETCH - urfetch end to end: exit codes, output files (-o, -O,
# -d), URL lists (-i FILE, -i -), the order of bodies on stdout, --json, one failure line per
# failed URL, nothing but the summary on a pipe and a bar on a terminal. Against urfetch's own
# server (urfetch --serve 0) on a loopback port the kernel picks; the server stops when this
# script closes its stdin (or dies). Expected bodies come from Python's own HTTP client. TLS
# options (--cacert, -k) and --compressed against a Python HTTPS server with a certificate made
# by the openssl tool (skipped, with a line saying so, where it is missing).
import gzip
import http.server
import json
import os
import pty
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request

URFETCH = os.path.abspath(sys.argv[1])
failures = []
passed = 0


def check(name, cond, detail=""):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(f"{name}: {detail}")
        print(f"FAIL {name}: {detail}", file=sys.stderr)


def run(args, stdin=None, cwd=None, timeout=60):
    return subprocess.run([URFETCH, *args], input=stdin, capture_output=True, cwd=cwd,
                          timeout=timeout)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        return e.read()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connections are refused
    return port


def main():
    tmp = tempfile.mkdtemp(prefix="urfetch-test-")
    with open(os.path.join(tmp, "hello.txt"), "wb") as f:
        f.write(b"static hello\n")
    srv = subprocess.Popen([URFETCH, "--serve", "0", "--serve-dir", tmp, "--serve-threads", "2"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    base = srv.stdout.readline().decode().strip().rstrip("/")
    if not base.startswith("http://127.0.0.1:"):
        print(f"server did not start: {base!r}", file=sys.stderr)
        return 1
    try:
        cases(base, tmp)
        tls_cases(tmp)
    finally:
        srv.stdin.close()
        rc = srv.wait(30)
        check("server stops cleanly at the end of its stdin", rc == 0, f"exit {rc}")
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def cases(base, tmp):
    # --help, --version, usage errors
    r = run(["--help"])
    check("--help exits 0", r.returncode == 0 and b"Usage: urfetch" in r.stdout, r.stdout[:80])
    r = run(["--version"])
    check("--version", r.returncode == 0 and r.stdout.startswith(b"urfetch "), r.stdout)
    r = run([])
    check("no URL is a usage error (2)", r.returncode == 2, r.returncode)
    r = run(["--no-such-option", base + "/"])
    check("an unknown option is a usage error (2)", r.returncode == 2, r.returncode)
    r = run(["-j", "0", base + "/"])
    check("-j 0 is a usage error (2)", r.returncode == 2, r.returncode)

    # order: the first URL is the slowest, yet bodies come out in the order given
    urls = [base + "/delay/200"] + [f"{base}/page/{i}" for i in range(60)] + \
           [base + "/static/hello.txt", base + "/bytes/100000"]
    want = b"".join(get(u) for u in urls)
    r = run(["-j", "16"] + urls)
    check("all ok exits 0", r.returncode == 0, r.stderr.decode()[-300:])
    check("bodies on stdout in the order given", r.stdout == want,
          f"{len(r.stdout)} bytes vs {len(want)}")
    r = run(["-j", "16", "-t", "2"] + urls)
    check("-t 2 keeps the order", r.returncode == 0 and r.stdout == want, r.returncode)

    # no progress bar on a pipe: stderr holds the two summary lines only
    lines = r.stderr.decode().splitlines()
    check("no progress bar on a pipe", b"\r" not in r.stderr and b"\033" not in r.stderr,
          repr(r.stderr[:120]))
    check("the summary on stderr", len(lines) == 2 and "63 requests: 63 ok, 0 failed" in lines[0],
          lines)
    r = run(["-s"] + urls[1:5])
    check("-s: nothing on stderr when all is well", r.returncode == 0 and r.stderr == b"",
          r.stderr)

    # a bar on a terminal
    master, slave = pty.openpty()
    p = subprocess.Popen([URFETCH, "-o", os.devnull, base + "/delay/300", base + "/page/1"],
                         stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(30)
    os.close(master)
    check("a progress bar on a terminal", b"\r" in out and b"2/2" in out, repr(out[:200]))

    # -o FILE
    out_path = os.path.join(tmp, "out.bin")
    r = run(["-s", "-o", out_path] + urls[1:20])
    with open(out_path, "rb") as f:
        got = f.read()
    check("-o writes the bodies to the file", r.returncode == 0 and r.stdout == b"" and
          got == b"".join(get(u) for u in urls[1:20]), len(got))

    # -O in the working directory, -d DIR
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    r = run(["-s", "-O", base + "/page/alpha", base + "/static/hello.txt?x=1", base + "/"],
            cwd=work)
    names = sorted(os.listdir(work))
    check("-O names files after the URL", r.returncode == 0 and
          names == ["alpha", "hello.txt", "index.html"], names)
    with open(os.path.join(work, "alpha"), "rb") as f:
        check("-O file content", f.read() == get(base + "/page/alpha"))
    dest = os.path.join(tmp, "dest")
    os.mkdir(dest)
    r = run(["-s", "-d", dest, base + "/page/one", base + "/page/two"])
    check("-d puts the files in DIR", r.returncode == 0 and
          sorted(os.listdir(dest)) == ["one", "two"], os.listdir(dest))
    with open(os.path.join(dest, "two"), "rb") as f:
        check("-d file content", f.read() == get(base + "/page/two"))
    r = run(["-d", os.path.join(tmp, "missing"), base + "/"])
    check("-d of a missing directory is a usage error", r.returncode == 2, r.returncode)

    # -i FILE and -i - (blank lines and comments skipped)
    listing = f"# a comment\n\n{base}/page/x\n   {base}/page/y  \n\n# another\n{base}/page/z\n"
    list_path = os.path.join(tmp, "list.txt")
    with open(list_path, "w") as f:
        f.write(listing)
    want = b"".join(get(f"{base}/page/{c}") for c in "xyz")
    r = run(["-s", "-i", list_path])
    check("-i FILE", r.returncode == 0 and r.stdout == want, r.stderr)
    r = run(["-s", "-i", "-"], stdin=listing.encode())
    check("-i - reads stdin", r.returncode == 0 and r.stdout == want, r.stderr)

    # failures: one line each, naming the URL and the reason; exit 1; the rest still output
    refused = f"http://127.0.0.1:{closed_port()}/x"
    bad = [base + "/status/404", base + "/status/500", refused]
    good = [base + "/page/g1", base + "/page/g2"]
    r = run(["-s", good[0]] + bad + [good[1]])
    err = r.stderr.decode().splitlines()
    check("a failure exits 1", r.returncode == 1, r.returncode)
    check("one line per failed URL", len(err) == 3, err)
    for u in bad:
        check(f"the failure line names {u}", any(line.startswith(f"urfetch: {u}: ")
                                                 for line in err), err)
    check("the reason of a 404", any("HTTP 404" in line for line in err), err)
    check("the reason of a refused connection", any("refused" in line.lower() for line in err),
          err)
    check("successful bodies still output, in order", r.stdout == get(good[0]) + get(good[1]),
          len(r.stdout))
    r = run(["-s", "--no-fail", base + "/status/404"])
    check("--no-fail: a 404 is not a failure", r.returncode == 0 and r.stdout == b"status 404\n",
          (r.returncode, r.stdout))
    r = run(["-s", "--retry", "2", "--retry-delay", "0", base + "/status/503"])
    check("--retry retries a 503", r.returncode == 1 and b"after 3 attempts" in r.stderr,
          r.stderr)

    # --json
    r = run(["--json", "-o", os.devnull, base + "/page/j1", base + "/page/j2",
             base + "/status/404"])
    last = r.stderr.decode().strip().splitlines()[-1]
    try:
        j = json.loads(last)
    except ValueError:
        j = {}
    check("--json is one JSON object on stderr", bool(j), last)
    if j:
        check("--json counts", (j["requests"], j["ok"], j["failed"]) == (3, 2, 1), j)
        # every body received counts, a failed URL's error page included
        want_bytes = sum(len(get(base + p)) for p in ("/page/j1", "/page/j2", "/status/404"))
        check("--json bytes", j["bytes"] == want_bytes, (j["bytes"], want_bytes))
        for k in ("wall_s", "requests_per_s", "mb_per_s", "connections"):
            check(f"--json has {k}", isinstance(j.get(k), (int, float)), j)
        check("--json latency", set(j["latency_ms"]) == {"p50", "p90", "p99"} and
              j["latency_ms"]["p50"] <= j["latency_ms"]["p90"] <= j["latency_ms"]["p99"], j)
        check("--json connections", 1 <= j["connections"] <= 3, j["connections"])
        check("--json failures", j["failures"][0]["url"] == base + "/status/404" and
              j["failures"][0]["status"] == 404, j["failures"])

    # request options
    r = run(["-s", "--data", "a=1&b=2", base + "/echo"])
    check("--data posts the body", r.returncode == 0 and r.stdout == b"a=1&b=2", r.stdout)
    data_path = os.path.join(tmp, "data.bin")
    with open(data_path, "wb") as f:
        f.write(b"line1\nline2\n\x00\xff")
    r = run(["-s", "--data-binary", "@" + data_path, base + "/echo"])
    check("--data-binary @file is sent exactly", r.stdout == b"line1\nline2\n\x00\xff", r.stdout)
    r = run(["-s", "-X", "PUT", "--data", "@" + data_path, base + "/echo"])
    check("--data @file drops newlines", r.stdout == b"line1line2\x00\xff", r.stdout)
    r = run(["-s", "-X", "HEAD", base + "/page/1"])
    check("-X HEAD has no body", r.returncode == 0 and r.stdout == b"", r.stdout)
    r = run(["-s", "-H", "Bad Header", base + "/"])
    check("a malformed -H is a usage error", r.returncode == 2, r.returncode)
    r = run(["-s", base + "/redirect/7"])
    check("redirects are followed", r.stdout == get(base + "/page/7"), r.stdout[:60])
    r = run(["-s", "--max-redirs", "0", base + "/redirect/7"])
    check("--max-redirs 0 returns the 302 (not a failure)", r.returncode == 0 and
          r.stdout == b"see /page/7\n", (r.returncode, r.stdout))
    r = run(["-s", "--timeout", "0.2", base + "/delay/3000"])
    check("--timeout", r.returncode == 1 and b"timed out" in r.stderr.lower(), r.stderr)
    r = run(["-s", "not a url"])
    check("a bad URL fails with a line", r.returncode == 1 and b"not a url" in r.stderr,
          r.stderr)


PLAIN = b"plain text, compressible " * 40


class TLSHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_encodings = []

    def do_GET(self):
        body, extra = PLAIN, []
        if self.path == "/gz":
            ae = self.headers.get("Accept-Encoding", "")
            TLSHandler.seen_encodings.append(ae)
            if "gzip" in ae:
                body, extra = gzip.compress(PLAIN), [("Content-Encoding", "gzip")]
        self.send_response(200)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def tls_cases(tmp):
    if not shutil.which("openssl"):
        print("SKIP TLS cases: the openssl tool is missing", file=sys.stderr)
        return
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TLSHandler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    base = f"https://127.0.0.1:{srv.server_address[1]}"
    try:
        r = run(["-s", "--cacert", cert, base + "/plain"])
        check("--cacert FILE: HTTPS verified against it", r.returncode == 0 and
              r.stdout == PLAIN, (r.returncode, r.stderr))
        r = run(["-s", base + "/plain"])
        err = r.stderr.decode().splitlines()
        check("an untrusted certificate fails with one line", r.returncode == 1 and
              len(err) == 1 and err[0].startswith(f"urfetch: {base}/plain: ") and
              "certificate" in err[0].lower() and r.stdout == b"", (r.returncode, err))
        r = run(["-s", "-k", base + "/plain"])
        check("-k skips the verification", r.returncode == 0 and r.stdout == PLAIN,
              (r.returncode, r.stderr))
        r = run(["-s", "--cacert", cert, "--compressed", base + "/gz"])
        check("--compressed asks for gzip and decodes it", r.returncode == 0 and
              r.stdout == PLAIN and "gzip" in TLSHandler.seen_encodings[-1:][0],
              (r.returncode, r.stderr, TLSHandler.seen_encodings))
        r = run(["-s", "--cacert", cert, base + "/gz"])
        check("without --compressed no Accept-Encoding is sent",
              r.returncode == 0 and r.stdout == PLAIN and TLSHandler.seen_encodings[-1] == "",
              TLSHandler.seen_encodings)
        r = run(["-s", "--cacert", os.path.join(tmp, "missing.pem"), base + "/plain"])
        check("--cacert of a missing file fails", r.returncode != 0 and r.stderr != b"",
              (r.returncode, r.stderr))
    finally:
        srv.shutdown()
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
