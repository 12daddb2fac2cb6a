/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/urfetch.h - what urfetch's files share: the options, the jobs (one per URL), the
 * run's counters, the ordered output.
 */
#ifndef URFETCH_H
#define URFETCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define UF_MAX_HEADERS 64

struct uf_opts {
	const char **urls; /* what to fetch, in order */
	size_t nurls;
	unsigned jobs;                     /* -j: requests in flight, over every thread */
	unsigned threads;                  /* -t: loops, one per thread */
	const char *out_file;              /* -o: everything to this file instead of stdout */
	bool remote_name;                  /* -O: each body to a file named after the URL */
	const char *dir;                   /* -d: where -O files go (implies -O) */
	bool silent;                       /* -s */
	bool json;                         /* --json */
	bool no_fail;                      /* --no-fail: status >= 400 is not a failure */
	const char *method;                /* -X, NULL: GET (POST with --data) */
	const char *hname[UF_MAX_HEADERS]; /* -H, split at the colon */
	const char *hvalue[UF_MAX_HEADERS];
	unsigned nheaders;
	const char *data; /* --data / --data-binary, loaded */
	size_t data_len;
	bool has_data;
	bool form; /* --data: Content-Type application/x-www-form-urlencoded unless -H gives one */
	uint64_t timeout_ns;         /* --timeout: whole request, 0 none */
	uint64_t connect_timeout_ns; /* --connect-timeout */
	bool insecure;               /* -k */
	const char *cacert;          /* --cacert FILE (PEM) */
	const char *cacert_pem;      /* or PEM in memory (the demo's own CA) */
	size_t cacert_pem_len;
	int max_redirs;          /* --max-redirs, default 10 */
	bool compressed;         /* --compressed */
	bool no_keepalive;       /* --no-keepalive */
	unsigned retries;        /* --retry */
	uint64_t retry_delay_ns; /* first back-off, doubling */
	bool progress;           /* a bar on stderr: a terminal and not -s */
	bool check;              /* the demo: verify bodies instead of writing them */
	bool discard;            /* the demo: drop bodies (after the check) */
	const char *label;       /* the demo: a name printed with the summary */
};

enum uf_job_state {
	UF_PENDING = 0,
	UF_DONE, /* finished; body (if any) waiting for its turn on the output */
	UF_WRITTEN,
};

struct uf_job {
	const char *url;
	char *body; /* for stdout/-o: held until its turn */
	size_t len, cap;
	int status;   /* HTTP status, 0 when no response */
	int err;      /* urio error, 0 if none */
	char *reason; /* failure text (heap), NULL on success: jobs are many, failures few */
	bool failed;
	unsigned attempts;
	uint64_t latency_ns;
	_Atomic int state;
};

/* Counters every thread adds to; read by the progress bar. */
struct uf_stats {
	atomic_size_t done, ok, failed;
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t connections;
	atomic_size_t next; /* the next job to start */
};

/* Output of bodies in the order of the URLs, whatever order they finish in. */
struct uf_out {
	pthread_mutex_t mu;
	size_t next; /* the first job not yet written */
	bool writing;
	int fd;
	int err; /* the first write error */
};

struct uf_run {
	struct uf_opts *o;
	struct uf_job *jobs;
	size_t njobs;
	struct uf_stats st;
	struct uf_out out;
	pthread_mutex_t err_mu; /* failure lines and the bar share stderr */
	bool bar_drawn;
	uint64_t t0;
	/* the demo: verify a body against its path */
	bool (*check_body)(const char *url, const char *body, size_t len);
};

/* output.c */
void uf_out_init(struct uf_out *out, int fd);
/* Job @i finished: marks it, and writes every finished job at the head of the line (in a task). */
void uf_out_done(struct uf_run *run, size_t i);
/* Appends @len bytes to a job's body buffer. Returns 0 or -ENOMEM. */
int uf_body_append(struct uf_job *j, const void *p, size_t len);
/* The file name -O gives a URL: its last path segment, "index.html" when there is none. */
int uf_remote_name(const char *url, char *name, size_t size);

/* report.c */
void uf_fail_line(struct uf_run *run, const struct uf_job *j);
void uf_progress_draw(struct uf_run *run, bool final);
void uf_summary(struct uf_run *run, double wall_s, FILE *f);

/* fetch.c: runs every job on o->threads loops; returns 0 or an error of the setup */
int uf_fetch_all(struct uf_run *run);

/* demo.c */
int uf_demo(struct uf_opts *o);
int uf_serve(const char *port, const char *dir, unsigned threads);

uint64_t uf_now_ns(void);

#endif
