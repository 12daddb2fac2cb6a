/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/main.c - urfetch: fetch many URLs at once, the asyncio + aiohttp gather example
 * as a command. Options, the URL list, and the run from start to summary.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <urio.h>
#include <urio/http1.h>

#include "urfetch.h"

#define DEFAULT_JOBS 64
#define MAX_JOBS     65536
#define MAX_THREADS  256

static const char usage_text[] =
    "Usage: urfetch [options] URL...\n"
    "       urfetch [options] -i FILE      (one URL a line; - for stdin)\n"
    "       urfetch --demo | --serve PORT [--serve-dir DIR]\n"
    "\n"
    "Fetches every URL concurrently and writes the bodies to stdout in the order given.\n"
    "\n"
    "Input and concurrency:\n"
    "  -i, --input FILE          read URLs from FILE (- for stdin); blank lines and # comments\n"
    "                            are skipped\n"
    "  -j, --jobs N              requests in flight (default 64)\n"
    "  -t, --threads N           event loops, one per thread (default 1)\n"
    "Output:\n"
    "  -o, --output FILE         write the bodies to FILE instead of stdout\n"
    "  -O, --remote-name         write each body to a file named after the URL's last segment\n"
    "  -d, --dir DIR             with -O, put the files in DIR (implies -O)\n"
    "  -s, --silent              no progress bar and no summary (failures are still reported)\n"
    "      --json                print the summary as one JSON object on stderr\n"
    "      --no-fail             do not count HTTP status >= 400 as a failure\n"
    "Request:\n"
    "  -X, --request METHOD      GET, HEAD, POST, PUT, DELETE, PATCH (default GET, or POST with\n"
    "                            --data)\n"
    "  -H, --header 'Name: value'  an extra request header (repeatable)\n"
    "      --data DATA           send DATA (or @FILE, newlines removed) as a form body\n"
    "      --data-binary DATA    send DATA (or @FILE, exactly) as the body\n"
    "      --compressed          ask for gzip/deflate and decode it\n"
    "      --max-redirs N        follow at most N redirects (default 10; 0: none)\n"
    "      --timeout SEC         limit on each whole request (default none)\n"
    "      --connect-timeout SEC limit on each connection's setup (default 10)\n"
    "      --retry N             retry transient failures (connect errors, resets, timeouts,\n"
    "                            408/429/500/502/503/504) up to N times, backing off\n"
    "      --retry-delay SEC     the first back-off, doubled each time (default 0.2)\n"
    "      --no-keepalive        a new connection for every request\n"
    "TLS:\n"
    "  -k, --insecure            do not verify the server's certificate\n"
    "      --cacert FILE         trust the CA certificates in FILE (PEM) instead of the system's\n"
    "Other:\n"
    "      --demo                serve pages over HTTP and HTTPS on loopback, fetch 10,000 from\n"
    "                            each, check every body (works offline)\n"
    "      --serve PORT          serve the demo pages (and --serve-dir DIR) on 127.0.0.1:PORT\n"
    "                            (0: any) until stdin ends; prints the base URL\n"
    "      --serve-threads N     loops of the server (default: one per CPU)\n"
    "  -h, --help                this text\n"
    "  -V, --version             the version\n"
    "\n"
    "Exit status: 0 when every URL succeeded, 1 when any failed (one line each on stderr),\n"
    "2 for a usage error.\n";

enum {
	OPT_JSON = 256,
	OPT_NO_FAIL,
	OPT_DATA,
	OPT_DATA_BINARY,
	OPT_COMPRESSED,
	OPT_MAX_REDIRS,
	OPT_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_RETRY,
	OPT_RETRY_DELAY,
	OPT_CACERT,
	OPT_DEMO,
	OPT_SERVE,
	OPT_SERVE_DIR,
	OPT_SERVE_THREADS,
	OPT_NO_KEEPALIVE,
};

static const struct option long_opts[] = {
    {"input", required_argument, NULL, 'i'},
    {"jobs", required_argument, NULL, 'j'},
    {"threads", required_argument, NULL, 't'},
    {"output", required_argument, NULL, 'o'},
    {"remote-name", no_argument, NULL, 'O'},
    {"dir", required_argument, NULL, 'd'},
    {"silent", no_argument, NULL, 's'},
    {"request", required_argument, NULL, 'X'},
    {"header", required_argument, NULL, 'H'},
    {"insecure", no_argument, NULL, 'k'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-fail", no_argument, NULL, OPT_NO_FAIL},
    {"data", required_argument, NULL, OPT_DATA},
    {"data-binary", required_argument, NULL, OPT_DATA_BINARY},
    {"compressed", no_argument, NULL, OPT_COMPRESSED},
    {"max-redirs", required_argument, NULL, OPT_MAX_REDIRS},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
    {"retry", required_argument, NULL, OPT_RETRY},
    {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"demo", no_argument, NULL, OPT_DEMO},
    {"serve", required_argument, NULL, OPT_SERVE},
    {"serve-dir", required_argument, NULL, OPT_SERVE_DIR},
    {"serve-threads", required_argument, NULL, OPT_SERVE_THREADS},
    {"no-keepalive", no_argument, NULL, OPT_NO_KEEPALIVE},
    {0},
};

uint64_t uf_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UR_SEC + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2))) static _Noreturn void usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "urfetch: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'urfetch --help'.\n");
	va_end(ap);
	exit(2);
}

static unsigned parse_uint(const char *s, const char *opt, unsigned min, unsigned max)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		usage_error("%s wants a number from %u to %u, not '%s'", opt, min, max, s);
	return (unsigned)v;
}

static uint64_t parse_seconds(const char *s, const char *opt)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e6)
		usage_error("%s wants seconds (e.g. 2.5), not '%s'", opt, s);
	return (uint64_t)llround(v * 1e9);
}

/* Reads a whole file (or stdin for "-") into a NUL-terminated heap buffer. */
static char *slurp(const char *path, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf)
			break;
		if (n + 1 >= cap) {
			char *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (fd != 0)
		close(fd);
	if (buf) {
		buf[n] = 0;
		*len = n;
	}
	return buf;
}

/*
 * What the URL list lives in: freed at exit (every exit, usage errors included), so that leak
 * checkers see a clean end.
 */
static struct {
	const char **urls;
	char **texts; /* -i files' contents: the URLs point into them */
	size_t ntexts;
} owned;

static void free_owned(void)
{
	for (size_t i = 0; i < owned.ntexts; i++)
		free(owned.texts[i]);
	free(owned.texts);
	free(owned.urls);
	owned.texts = NULL;
	owned.urls = NULL;
	owned.ntexts = 0;
}

static void add_url(struct uf_opts *o, size_t *cap, const char *url)
{
	if (o->nurls == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		const char **u = realloc(o->urls, *cap * sizeof(*o->urls));
		if (!u) {
			fprintf(stderr, "urfetch: out of memory\n");
			exit(2);
		}
		o->urls = owned.urls = u;
	}
	o->urls[o->nurls++] = url;
}

/* -i: one URL a line; surrounding blanks trimmed; blank lines and # comments skipped. */
static void read_list(struct uf_opts *o, size_t *cap, const char *path)
{
	size_t len;
	char *text = slurp(path, &len);
	if (!text) {
		fprintf(stderr, "urfetch: cannot read the URL list %s: %s\n", path,
		        strerror(errno));
		exit(2);
	}
	char **t = realloc(owned.texts, (owned.ntexts + 1) * sizeof(*t));
	if (!t) {
		free(text);
		fprintf(stderr, "urfetch: out of memory\n");
		exit(2);
	}
	owned.texts = t;
	owned.texts[owned.ntexts++] = text;
	for (char *line = text, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		while (*line == ' ' || *line == '\t')
			line++;
		char *end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = 0;
		if (*line && *line != '#')
			add_url(o, cap, line);
	}
}

static void load_data(struct uf_opts *o, const char *arg, bool binary)
{
	if (arg[0] != '@') {
		o->data = arg;
		o->data_len = strlen(arg);
	} else {
		size_t len;
		char *d = slurp(arg + 1, &len);
		if (!d) {
			fprintf(stderr, "urfetch: cannot read %s: %s\n", arg + 1, strerror(errno));
			exit(2);
		}
		if (!binary) { /* as curl: --data @file drops CR and LF */
			size_t k = 0;
			for (size_t i = 0; i < len; i++)
				if (d[i] != '\r' && d[i] != '\n')
					d[k++] = d[i];
			len = k;
		}
		o->data = d;
		o->data_len = len;
	}
	o->has_data = true;
	o->form = !binary;
}

static void add_header(struct uf_opts *o, char *arg)
{
	char *colon = strchr(arg, ':');
	if (!colon || colon == arg)
		usage_error("-H wants 'Name: value', not '%s'", arg);
	if (o->nheaders == UF_MAX_HEADERS)
		usage_error("too many -H options (at most 64): '%s'", arg);
	*colon = 0;
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	char *end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = 0;
	if (ur_http_header_check(arg, strlen(arg), v, strlen(v)) < 0) {
		*colon = ':';
		usage_error("-H '%s' is not a valid header field", arg);
	}
	o->hname[o->nheaders] = arg;
	o->hvalue[o->nheaders] = v;
	o->nheaders++;
}

static bool method_ok(const char *m)
{
	static const char *const known[] = {"GET",    "HEAD",  "POST",   "PUT",
	                                    "DELETE", "PATCH", "OPTIONS"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i]) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	struct uf_opts o = {
	    .jobs = DEFAULT_JOBS,
	    .threads = 1,
	    .max_redirs = 10,
	    .connect_timeout_ns = 10 * UR_SEC,
	    .retry_delay_ns = 200 * UR_MSEC,
	};
	size_t cap = 0;
	bool demo = false;

	/*
	 * Bodies held for the ordered output are freed in bursts; with glibc's default trim
	 * threshold each burst shrank the loop threads' heaps (madvise) and the next requests
	 * grew them again (mprotect, page faults), which cost more CPU than the HTTP work.
	 */
	atexit(free_owned);
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 4 << 20);
	const char *serve = NULL, *serve_dir = NULL;
	unsigned serve_threads = 0;
	int c;

	while ((c = getopt_long(argc, argv, "i:j:t:o:Od:sX:H:khV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			read_list(&o, &cap, optarg);
			break;
		case 'j':
			o.jobs = parse_uint(optarg, "-j", 1, MAX_JOBS);
			break;
		case 't':
			o.threads = parse_uint(optarg, "-t", 1, MAX_THREADS);
			break;
		case 'o':
			o.out_file = optarg;
			break;
		case 'O':
			o.remote_name = true;
			break;
		case 'd':
			o.dir = optarg;
			o.remote_name = true;
			break;
		case 's':
			o.silent = true;
			break;
		case 'X':
			if (!method_ok(optarg))
				usage_error("-X: unsupported method '%s'", optarg);
			o.method = optarg;
			break;
		case 'H':
			add_header(&o, optarg);
			break;
		case 'k':
			o.insecure = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("urfetch %s (liburio %s)\n", URFETCH_VERSION, ur_version());
			return 0;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_NO_FAIL:
			o.no_fail = true;
			break;
		case OPT_DATA:
			load_data(&o, optarg, false);
			break;
		case OPT_DATA_BINARY:
			load_data(&o, optarg, true);
			break;
		case OPT_COMPRESSED:
			o.compressed = true;
			break;
		case OPT_MAX_REDIRS:
			o.max_redirs = (int)parse_uint(optarg, "--max-redirs", 0, 100);
			break;
		case OPT_TIMEOUT:
			o.timeout_ns = parse_seconds(optarg, "--timeout");
			break;
		case OPT_CONNECT_TIMEOUT:
			o.connect_timeout_ns = parse_seconds(optarg, "--connect-timeout");
			break;
		case OPT_RETRY:
			o.retries = parse_uint(optarg, "--retry", 0, 100);
			break;
		case OPT_RETRY_DELAY:
			o.retry_delay_ns = parse_seconds(optarg, "--retry-delay");
			break;
		case OPT_CACERT:
			o.cacert = optarg;
			break;
		case OPT_DEMO:
			demo = true;
			break;
		case OPT_SERVE:
			serve = optarg;
			break;
		case OPT_SERVE_DIR:
			serve_dir = optarg;
			break;
		case OPT_SERVE_THREADS:
			serve_threads = parse_uint(optarg, "--serve-threads", 1, MAX_THREADS);
			break;
		case OPT_NO_KEEPALIVE:
			o.no_keepalive = true;
			break;
		default:
			fprintf(stderr, "Try 'urfetch --help'.\n");
			return 2;
		}
	}
	for (int i = optind; i < argc; i++)
		add_url(&o, &cap, argv[i]);

	if (serve)
		return uf_serve(serve, serve_dir, serve_threads);
	o.progress = !o.silent && isatty(STDERR_FILENO);
	if (demo)
		return uf_demo(&o);
	if (o.nurls == 0)
		usage_error("no URL given");
	if (o.out_file && o.remote_name)
		usage_error("-o and -O/-d cannot be used together");
	if (o.dir) {
		struct stat st;
		if (stat(o.dir, &st) < 0 || !S_ISDIR(st.st_mode))
			usage_error("-d: '%s' is not a directory", o.dir);
	}
	if (o.method && strcmp(o.method, "HEAD") == 0 && o.has_data)
		usage_error("HEAD takes no body (--data)");

	int fd = STDOUT_FILENO;
	if (o.out_file) {
		fd = open(o.out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			fprintf(stderr, "urfetch: cannot open %s: %s\n", o.out_file,
			        strerror(errno));
			return 2;
		}
	}

	struct uf_run run = {.o = &o, .njobs = o.nurls};
	run.jobs = calloc(o.nurls, sizeof(*run.jobs));
	if (!run.jobs) {
		fprintf(stderr, "urfetch: out of memory\n");
		return 2;
	}
	for (size_t i = 0; i < o.nurls; i++)
		run.jobs[i].url = o.urls[i];
	uf_out_init(&run.out, fd);
	pthread_mutex_init(&run.err_mu, NULL);

	int r = uf_fetch_all(&run);
	int rc = atomic_load(&run.st.failed) ? 1 : 0;
	if (r < 0) {
		fprintf(stderr, "urfetch: cannot start: %s\n", ur_strerror(r));
		rc = 2;
	}
	if (o.out_file && close(fd) < 0 && !run.out.err)
		run.out.err = -errno;
	if (r == 0 && run.out.err) {
		fprintf(stderr, "urfetch: writing the output: %s\n", ur_strerror(run.out.err));
		rc = 1;
	}
	for (size_t i = 0; i < run.njobs; i++) {
		free(run.jobs[i].body);
		free(run.jobs[i].reason);
	}
	free(run.jobs);
	return rc;
}
