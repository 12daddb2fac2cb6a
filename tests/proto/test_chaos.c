/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_chaos.c - the proto layer under the faults its other suites turn off
 * (enomem,reset; docs/reliability.md): urio's HTTP server and client on one loop over loopback,
 * and a stream echo through the server helper's buffer-ring streams, many requests at once.
 *
 * The rule of issue 9: every request succeeds with the exact body, or fails with a clear urio
 * error (ur_strerror names it; no "unknown error"); no wait runs into its deadline (nothing
 * hangs); afterwards every descriptor is closed (and ASan sees no leak). In a fault build the
 * faults are on whatever the pass asked for: this test sets its own classes (the run's seed when
 * a pass sets one). Elsewhere it runs without faults, and then every request must succeed.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "../helpers.h"
#include <urio/http.h>
#include <urio/http_server.h>
#include <urio/net.h>
#include <urio/server.h>

TestSuite(chaos, .timeout = 240);

enum {
	CH_WORKERS = 8,   /* HTTP client tasks */
	CH_REQUESTS = 40, /* requests each */
	CH_ECHOERS = 8,   /* stream echo client tasks */
	CH_ECHO_LEN = 65536,
	CH_ECHO_CHUNK = 4096,
	CH_PATTERN = 256 * 1024,
};

/* Response i's body is CH_PATTERN's bytes from i % 251, as long as its size says. */
static const size_t ch_sizes[] = {0, 1, 100, 1500, 4096, 65536, 200000};
static char ch_pattern[CH_PATTERN + 256];

struct chaos {
	struct ur_server *http, *echo;
	uint16_t http_port, echo_port;
	atomic_int ok, failed, bad, timedout, refused_tasks;
	char first_bad[256];
	char errors[512]; /* the distinct error names seen, for the log */
};

static struct chaos ch;

static void note_error(int r)
{
	const char *name = ur_strerror_name(r);
	if (!strstr(ch.errors, name) && strlen(ch.errors) + strlen(name) + 2 < sizeof(ch.errors))
		snprintf(ch.errors + strlen(ch.errors), sizeof(ch.errors) - strlen(ch.errors),
		         "%s ", name);
}

static void note_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (atomic_fetch_add(&ch.bad, 1) == 0)
		vsnprintf(ch.first_bad, sizeof(ch.first_bad), fmt, ap);
	va_end(ap);
}

/* An error is clear when urio names it: not "unknown error", not a timeout (nothing hangs). */
static void check_error(int r)
{
	const char *text = ur_strerror(r);
	note_error(r);
	if (r == -ETIMEDOUT)
		atomic_fetch_add(&ch.timedout, 1);
	else if (r >= 0 || !text || !*text || strstr(text, "nknown"))
		note_bad("unclear error %d: %s", r, text ? text : "(null)");
	atomic_fetch_add(&ch.failed, 1);
}

/* GET /b/<size>/<salt> */
static int handler(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	(void)arg;
	unsigned long size = 0, salt = 0;
	char path[64];
	snprintf(path, sizeof(path), "%.*s", (int)rq->path_len, rq->path);
	if (sscanf(path, "/b/%lu/%lu", &size, &salt) != 2 || size > CH_PATTERN) {
		rs->status = 404;
		return 0;
	}
	rs->status = 200;
	rs->body = ch_pattern + salt % 251;
	rs->body_len = size;
	return 0;
}

static bool http_stopping(void *arg)
{
	(void)arg;
	return ch.http && ur_server_stopping(ch.http);
}

static int http_conn(struct ur_stream *s, void *arg)
{
	(void)arg;
	struct ur_http_server_opts o = {.handler = handler, .stopping = http_stopping};
	ur_http_serve_conn(s, &o);
	return 0;
}

static int echo_conn(struct ur_stream *s, void *arg)
{
	(void)arg;
	char buf[4096];
	ssize_t n;
	ur_stream_set_timeout(s, 20 * UR_SEC);
	while ((n = ur_stream_read(s, buf, sizeof(buf))) > 0)
		if (ur_stream_write_all(s, buf, (size_t)n) < 0)
			break;
	return 0;
}

struct worker {
	struct ur_http_client *c;
	unsigned id;
};

static int http_worker(void *arg)
{
	struct worker *w = arg;
	for (unsigned j = 0; j < CH_REQUESTS; j++) {
		unsigned i = w->id * CH_REQUESTS + j;
		size_t size = ch_sizes[(i * 7u) % (sizeof(ch_sizes) / sizeof(ch_sizes[0]))];
		char url[96];
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/b/%zu/%u", ch.http_port, size, i);
		struct ur_http_response r;
		ur_http_response_init(&r);
		int ret = ur_http_get(w->c, url, &r);
		if (ret < 0) {
			check_error(ret);
		} else if (r.status != 200) {
			note_bad("request %u: status %d", i, r.status);
		} else if (r.body_len != size || memcmp(r.body, ch_pattern + i % 251, size) != 0) {
			note_bad("request %u: body of %llu bytes differs", i,
			         (unsigned long long)r.body_len);
		} else {
			atomic_fetch_add(&ch.ok, 1);
		}
		ur_http_response_free(&r);
	}
	return 0;
}

/* Sends 64 KiB a chunk at a time, reading each chunk back: what comes back is the exact prefix. */
static int echo_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct ur_stream s;
	static _Thread_local char back[CH_ECHO_CHUNK];
	int r = ur_tcp_connect(&s, "127.0.0.1", ch.echo_port, NULL);
	if (r < 0) {
		check_error(r);
		return 0;
	}
	ur_stream_set_timeout(&s, 20 * UR_SEC);
	const char *out = ch_pattern + id;
	size_t done = 0;
	while (done < CH_ECHO_LEN) {
		ssize_t n = ur_stream_write_all(&s, out + done, CH_ECHO_CHUNK);
		if (n >= 0)
			n = ur_stream_read_exactly(&s, back, CH_ECHO_CHUNK);
		if (n < 0) {
			check_error((int)n);
			break;
		}
		if (memcmp(back, out + done, CH_ECHO_CHUNK) != 0) {
			note_bad("echo %u: chunk at %zu differs", id, done);
			break;
		}
		done += CH_ECHO_CHUNK;
	}
	if (done == CH_ECHO_LEN)
		atomic_fetch_add(&ch.ok, 1);
	ur_stream_close(&s);
	return 0;
}

static int chaos_main(void *arg)
{
	(void)arg;
	struct ur_http_client c;
	struct ur_http_client_opts co = {
	    .max_per_host = 4, .connect_timeout_ns = 20 * UR_SEC, .read_timeout_ns = 20 * UR_SEC};
	ASSERT_RES(ur_http_client_init(&c, ur_current_loop(), &co), 0);
	struct worker ws[CH_WORKERS];
	struct ur_task *t[CH_WORKERS + CH_ECHOERS];
	unsigned n = 0;
	for (unsigned i = 0; i < CH_WORKERS + CH_ECHOERS; i++) {
		int r;
		if (i < CH_WORKERS) {
			ws[i] = (struct worker){.c = &c, .id = i};
			r = ur_spawn(ur_current_loop(), &t[n], http_worker, &ws[i], NULL);
		} else {
			r = ur_spawn(ur_current_loop(), &t[n], echo_worker,
			             (void *)(uintptr_t)(i - CH_WORKERS), NULL);
		}
		if (r < 0) {
			ASSERT_RES(r, -ENOMEM); /* enomem refused the spawn: a clear failure */
			atomic_fetch_add(&ch.refused_tasks, 1);
			continue;
		}
		n++;
	}
	for (unsigned i = 0; i < n; i++) {
		int r = ur_join(t[i]);
		if (r == -ENOMEM)
			atomic_fetch_add(&ch.refused_tasks, 1); /* refused its stack: never ran */
		else
			ASSERT_RES(r, 0);
	}
	ASSERT_RES(ur_http_client_close(&c), 0);
	ur_server_stop(ch.http, 0);
	ur_server_stop(ch.echo, 0);
	return 0;
}

static void faults_log(char *path)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
	setenv("UR_FAULT_LOG", path, 1);
}

static unsigned long faults_injected(const char *path)
{
	unsigned long total = 0;
	FILE *fp = fopen(path, "r");
	char line[512];
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp)) {
		char *end = strchr(line, '(');
		if (end)
			*end = 0; /* the internal sites are counted in enomem already */
		for (char *q = line; (q = strchr(q, '=')); q++)
			total += strtoul(q + 1, NULL, 10);
	}
	fclose(fp);
	unlink(path);
	return total;
}

Test(chaos, http_and_echo_under_enomem_and_reset)
{
	char log[] = "/tmp/urio-chaos-log-XXXXXX";
	bool faulty = UR_FAULT_INJECTION;
	if (faulty) {
		const char *seed = getenv("UR_FAULT_SEED");
		setenv("UR_FAULT_SEED", seed && *seed ? seed : "4242", 1);
		setenv("UR_FAULT_RATE", "0.02", 1);
		setenv("UR_FAULT_SPEC", "enomem,reset", 1);
		faults_log(log);
	}
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(ch_pattern); i++)
		ch_pattern[i] = (char)((i * 131 + (i >> 9)) >> 1);
	int fds = t_count_fds();

	struct ur_loop *l = t_loop();
	struct ur_server_opts ho = {
	    .host = "127.0.0.1", .loops = &l, .nloops = 1, .on_conn = http_conn};
	struct ur_server_opts eo = {.host = "127.0.0.1",
	                            .loops = &l,
	                            .nloops = 1,
	                            .on_conn = echo_conn,
	                            .flags = UR_SERVER_RXRING,
	                            .rx_buffers = 16};
	ASSERT_RES(ur_server_start(&ch.http, &ho), 0);
	ASSERT_RES(ur_server_start(&ch.echo, &eo), 0);
	ch.http_port = ur_server_port(ch.http);
	ch.echo_port = ur_server_port(ch.echo);

	int r = ur_run(l, chaos_main, NULL, NULL);
	if (r == -ENOMEM) {
		/* the main task itself was refused: nothing ran, the servers still have to stop */
		ur_server_stop(ch.http, 0);
		ur_server_stop(ch.echo, 0);
	} else {
		ASSERT_RES(r, 0);
	}
	ASSERT_RES(ur_loop_run(l, UR_RUN_DEFAULT), 0); /* until both servers are done with it */
	ASSERT_RES(ur_server_join(ch.http), 0);
	ASSERT_RES(ur_server_join(ch.echo), 0);
	ASSERT_RES(ur_server_free(&ch.http), 0);
	ASSERT_RES(ur_server_free(&ch.echo), 0);
	t_loop_done(&l);

	int total = CH_WORKERS * CH_REQUESTS + CH_ECHOERS;
	cr_log_info("chaos: %d ok, %d failed (%s), %d tasks refused, of %d", atomic_load(&ch.ok),
	            atomic_load(&ch.failed), ch.errors, atomic_load(&ch.refused_tasks), total);
	cr_assert_eq(atomic_load(&ch.bad), 0, "%d wrong: first %s", atomic_load(&ch.bad),
	             ch.first_bad);
	cr_assert_eq(atomic_load(&ch.timedout), 0, "%d waits ran into their deadline",
	             atomic_load(&ch.timedout));
	cr_assert_eq(t_count_fds(), fds, "descriptors leaked");
	if (faulty) {
		cr_assert_gt(faults_injected(log), 0, "no fault was injected");
	} else {
		cr_assert_eq(atomic_load(&ch.ok), total, "without faults every request succeeds");
	}
}
