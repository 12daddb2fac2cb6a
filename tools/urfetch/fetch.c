/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/fetch.c - the run: -t threads, each with its own loop and HTTP client, and -j
 * worker tasks spread over them. A worker takes the next URL from a shared counter, fetches it
 * (retrying transient failures), and hands the result to the ordered output. The main thread
 * draws the progress bar meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <urio.h>
#include <urio/http.h>
#include <urio/tls.h>

#include "urfetch.h"

#define PROGRESS_NS (100 * UR_MSEC)

/* A finishing thread wakes the main thread at once, so the process ends with the work. */
static pthread_mutex_t fin_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_cv = PTHREAD_COND_INITIALIZER;

struct uf_thread {
	struct uf_run *run;
	struct ur_tls_ctx *tls;
	const struct ur_http_header *headers;
	size_t nheaders;
	unsigned workers;
	int dirfd;
	pthread_t th;
	struct ur_http_client client;
	int err;
	uint64_t t_end; /* when its last request finished */
	_Atomic bool finished;
};

/* What a body callback appends to. */
static int on_body(void *arg, const void *data, size_t len)
{
	return uf_body_append(arg, data, len);
}

/* Failures worth another try: the network's, and the statuses curl's --retry retries. */
static bool transient(int err, int status)
{
	switch (err) {
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -ECONNABORTED:
	case -ETIMEDOUT:
	case -EPIPE:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EAGAIN:
	case UR_EHTTP_TRUNCATED:
		return true;
	case 0:
		return status == 408 || status == 429 || status == 500 || status == 502 ||
		       status == 503 || status == 504;
	default:
		return false;
	}
}

#define REASON_MAX 256

/* One attempt at job @j; fills in status/err/len, and @reason (REASON_MAX bytes). */
static void attempt(struct uf_thread *t, struct uf_job *j, char *reason)
{
	const struct uf_opts *o = t->run->o;
	struct ur_http_request rq = {
	    .method = o->method ? o->method : (o->has_data ? "POST" : "GET"),
	    .url = j->url,
	    .headers = t->headers,
	    .num_headers = t->nheaders,
	    .body_source = o->has_data ? UR_HTTP_BODY_MEMORY : UR_HTTP_BODY_NONE,
	    .body = o->data,
	    .body_len = o->has_data ? o->data_len : 0,
	    .flags = (o->compressed ? UR_HTTP_COMPRESSED : 0) |
	             (o->no_keepalive ? UR_HTTP_NO_KEEPALIVE : 0) |
	             (o->max_redirs == 0 ? UR_HTTP_NO_REDIRECTS : 0),
	    .max_redirects = o->max_redirs > 0 ? (uint32_t)o->max_redirs : 0,
	    .timeout_ns = o->timeout_ns,
	};
	struct ur_http_response r;
	int fd = -1;

	ur_http_response_init(&r);
	j->len = 0;
	j->status = 0;
	j->err = 0;
	if (o->remote_name) {
		char name[256];
		int e = uf_remote_name(j->url, name, sizeof(name));
		fd = e < 0 ? e : ur_openat(t->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		if (fd < 0) {
			j->err = fd;
			snprintf(reason, REASON_MAX, "cannot create %.100s: %s", name,
			         ur_strerror(fd));
			return;
		}
		r.sink = UR_HTTP_SINK_FILE;
		r.body_fd = fd;
		r.body_off = 0;
	} else if (o->discard && !t->run->check_body) {
		r.sink = UR_HTTP_SINK_DISCARD;
	} else {
		r.sink = UR_HTTP_SINK_CALLBACK;
		r.on_body = on_body;
		r.body_arg = j;
	}

	uint64_t t0 = uf_now_ns();
	int ret = ur_http_request(&t->client, &rq, &r);
	j->latency_ns = uf_now_ns() - t0;
	j->err = ret < 0 ? ret : 0;
	j->status = ret == 0 ? r.status : 0;
	if (ret == 0 && r.sink != UR_HTTP_SINK_CALLBACK)
		j->len = (size_t)r.body_len;
	if (ret < 0)
		snprintf(reason, REASON_MAX, "%s (%s)", ur_strerror(ret), ur_strerror_name(ret));
	else if (r.status >= 400)
		snprintf(reason, REASON_MAX, "HTTP %d %s", r.status,
		         r.reason && *r.reason ? r.reason : "");
	else
		reason[0] = 0;
	if (fd >= 0)
		ur_close(fd);
	ur_http_response_free(&r);
}

static void fetch_job(struct uf_thread *t, size_t i)
{
	struct uf_run *run = t->run;
	const struct uf_opts *o = run->o;
	struct uf_job *j = &run->jobs[i];
	uint64_t delay = o->retry_delay_ns;
	char reason[REASON_MAX];

	for (;;) {
		attempt(t, j, reason);
		j->attempts++;
		if (!transient(j->err, j->status) || j->attempts > o->retries)
			break;
		if (ur_sleep(delay) < 0)
			break;
		if (delay < 10 * UR_SEC)
			delay *= 2;
	}
	j->failed = j->err < 0 || (j->status >= 400 && !o->no_fail);
	if (!j->failed && run->check_body && !run->check_body(j->url, j->body, j->len)) {
		j->failed = true;
		snprintf(reason, REASON_MAX, "body check failed (%zu bytes)", j->len);
	}
	if (j->failed && j->attempts > 1) {
		size_t n = strlen(reason);
		snprintf(reason + n, sizeof(reason) - n, ", after %u attempts", j->attempts);
	}
	if (j->failed)
		j->reason = strdup(reason); /* NULL (out of memory) prints as "" */
	atomic_fetch_add(&run->st.bytes, j->len);
	if (j->failed) {
		atomic_fetch_add(&run->st.failed, 1);
		uf_fail_line(run, j);
	} else {
		atomic_fetch_add(&run->st.ok, 1);
	}
	atomic_fetch_add(&run->st.done, 1);
	if (o->remote_name || o->discard) {
		free(j->body);
		j->body = NULL;
		j->cap = 0;
		atomic_store(&j->state, UF_WRITTEN);
	} else {
		if (j->failed)
			j->len = 0; /* a failed URL's body (an error page) is not output */
		uf_out_done(run, i);
	}
}

static int worker(void *arg)
{
	struct uf_thread *t = arg;
	for (;;) {
		size_t i = atomic_fetch_add(&t->run->st.next, 1);
		if (i >= t->run->njobs)
			return 0;
		fetch_job(t, i);
	}
}

static int thread_task(void *arg)
{
	struct uf_thread *t = arg;
	const struct uf_opts *o = t->run->o;
	struct ur_http_client_opts co = {
	    .max_per_host = t->workers,
	    .max_total = t->workers,
	    .connect_timeout_ns =
	        o->connect_timeout_ns ? o->connect_timeout_ns : UR_HTTP_NO_TIMEOUT,
	    .tls = t->tls,
	};
	struct ur_task **tasks = calloc(t->workers, sizeof(*tasks));
	int r = tasks ? ur_http_client_init(&t->client, ur_current_loop(), &co) : -ENOMEM;
	if (r < 0) {
		free(tasks);
		return r;
	}
	unsigned n = 0;
	for (; n < t->workers; n++) {
		r = ur_spawn(ur_current_loop(), &tasks[n], worker, t, NULL);
		if (r < 0)
			break;
	}
	if (n == 0)
		worker(t); /* could not spawn at all: do the work in this task */
	for (unsigned i = 0; i < n; i++)
		ur_join(tasks[i]);
	free(tasks);
	struct ur_http_client_stats st;
	ur_http_client_stats(&t->client, &st);
	atomic_fetch_add(&t->run->st.connections, st.connections);
	ur_http_client_close(&t->client);
	return 0;
}

static void *thread_main(void *arg)
{
	struct uf_thread *t = arg;
	int res = 0;
	int r = ur_run(NULL, thread_task, t, &res);
	t->err = r < 0 ? r : res;
	t->t_end = uf_now_ns();
	pthread_mutex_lock(&fin_mu);
	atomic_store(&t->finished, true);
	pthread_cond_signal(&fin_cv);
	pthread_mutex_unlock(&fin_mu);
	return NULL;
}

static int make_tls(const struct uf_opts *o, struct ur_tls_ctx **ctx)
{
	char err[256] = "";
	struct ur_tls_opts to = {
	    /* a throughput tool: connections stay busy, their buffers are kept */
	    .flags = UR_TLS_KEEP_BUFFERS | (o->insecure ? UR_TLS_INSECURE : 0),
	    .ca_file = o->cacert,
	    .ca_pem = o->cacert_pem,
	    .errbuf = err,
	    .errlen = sizeof(err),
	};
	*ctx = NULL;
	if (!o->insecure && !o->cacert && !o->cacert_pem)
		return 0; /* the client's own verifying context */
	int r = ur_tls_ctx_new(ctx, UR_TLS_CLIENT, &to);
	if (r < 0)
		fprintf(stderr, "urfetch: TLS setup: %s%s%s\n", ur_strerror(r), *err ? ": " : "",
		        err);
	return r;
}

int uf_fetch_all(struct uf_run *run)
{
	const struct uf_opts *o = run->o;
	unsigned nt = o->threads;
	if (nt > o->jobs)
		nt = o->jobs;
	if (nt > run->njobs && run->njobs > 0)
		nt = (unsigned)run->njobs;
	struct uf_thread *ts = calloc(nt, sizeof(*ts));
	struct ur_http_header *hdr = calloc(o->nheaders + 1, sizeof(*hdr));
	if (!ts || !hdr) {
		free(ts);
		free(hdr);
		return -ENOMEM;
	}
	bool have_ct = false;
	for (unsigned i = 0; i < o->nheaders; i++) {
		hdr[i] = (struct ur_http_header){o->hname[i], strlen(o->hname[i]), o->hvalue[i],
		                                 strlen(o->hvalue[i])};
		have_ct |= strcasecmp(o->hname[i], "content-type") == 0;
	}
	if (o->form && !have_ct) {
		static const char ct[] = "application/x-www-form-urlencoded";
		hdr[o->nheaders] = (struct ur_http_header){"Content-Type", 12, ct, sizeof(ct) - 1};
	}
	size_t nhdr = o->nheaders + (o->form && !have_ct ? 1 : 0);

	struct ur_tls_ctx *tls;
	int r = make_tls(o, &tls);
	if (r < 0) {
		free(ts);
		free(hdr);
		return r;
	}
	int dirfd = AT_FDCWD;
	if (o->dir) {
		dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0) {
			r = -errno;
			ur_tls_ctx_free(tls);
			free(ts);
			free(hdr);
			return r;
		}
	}

	run->t0 = uf_now_ns();
	unsigned started = 0;
	for (unsigned i = 0; i < nt; i++) {
		ts[i] = (struct uf_thread){
		    .run = run, .tls = tls, .headers = hdr, .nheaders = nhdr, .dirfd = dirfd};
		ts[i].workers = o->jobs / nt + (i < o->jobs % nt ? 1 : 0);
		if (pthread_create(&ts[i].th, NULL, thread_main, &ts[i]) != 0)
			break;
		started++;
	}
	r = started ? 0 : -EAGAIN;
	pthread_mutex_lock(&fin_mu);
	for (;;) {
		unsigned fin = 0;
		for (unsigned i = 0; i < started; i++)
			fin += atomic_load(&ts[i].finished);
		if (fin == started)
			break;
		if (o->progress) {
			pthread_mutex_unlock(&fin_mu);
			uf_progress_draw(run, false);
			pthread_mutex_lock(&fin_mu);
		}
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += (long)PROGRESS_NS;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fin_cv, &fin_mu, &dl);
	}
	pthread_mutex_unlock(&fin_mu);
	/* the wall time ends with the last thread, not with the progress poll that saw it */
	uint64_t t_end = run->t0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(ts[i].th, NULL);
		if (ts[i].err < 0 && r == 0)
			r = ts[i].err;
		if (ts[i].t_end > t_end)
			t_end = ts[i].t_end;
	}
	double wall = (double)(t_end - run->t0) / 1e9;
	if (o->progress)
		uf_progress_draw(run, true);
	if (r == 0 && (!o->silent || o->json))
		uf_summary(run, wall, stderr);
	if (dirfd >= 0 && dirfd != AT_FDCWD)
		close(dirfd);
	ur_tls_ctx_free(tls);
	free(ts);
	free(hdr);
	return r;
}
