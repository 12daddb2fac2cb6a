/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/report.c - what urfetch tells the user on stderr: one line per failed URL (never
 * silenced), a progress bar on a terminal, and the summary at the end, as text or JSON.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "urfetch.h"

#define BAR_WIDTH 30

/* Erases the bar, if one is drawn, so a line can be printed in its place. */
static void clear_bar(struct uf_run *run)
{
	if (run->bar_drawn) {
		fputs("\r\033[K", stderr);
		run->bar_drawn = false;
	}
}

void uf_fail_line(struct uf_run *run, const struct uf_job *j)
{
	pthread_mutex_lock(&run->err_mu);
	clear_bar(run);
	fprintf(stderr, "urfetch: %s: %s\n", j->url, j->reason ? j->reason : "");
	fflush(stderr);
	pthread_mutex_unlock(&run->err_mu);
}

static void human_bytes(uint64_t b, char *out, size_t size)
{
	if (b < 1024)
		snprintf(out, size, "%" PRIu64 " B", b);
	else if (b < 1024 * 1024)
		snprintf(out, size, "%.1f KiB", (double)b / 1024);
	else if (b < (uint64_t)1024 * 1024 * 1024)
		snprintf(out, size, "%.1f MiB", (double)b / (1024 * 1024));
	else
		snprintf(out, size, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

void uf_progress_draw(struct uf_run *run, bool final)
{
	size_t done = atomic_load(&run->st.done), failed = atomic_load(&run->st.failed);
	double wall = (double)(uf_now_ns() - run->t0) / 1e9;
	char bytes[32];
	human_bytes(atomic_load(&run->st.bytes), bytes, sizeof(bytes));
	size_t fill = run->njobs ? done * BAR_WIDTH / run->njobs : BAR_WIDTH;
	char bar[BAR_WIDTH + 1];
	memset(bar, '#', fill);
	memset(bar + fill, '.', BAR_WIDTH - fill);
	bar[BAR_WIDTH] = 0;

	pthread_mutex_lock(&run->err_mu);
	fprintf(stderr, "\r\033[K[%s] %zu/%zu  %zu failed  %s  %.0f req/s", bar, done, run->njobs,
	        failed, bytes, wall > 0 ? (double)done / wall : 0.0);
	run->bar_drawn = true;
	if (final)
		clear_bar(run);
	fflush(stderr);
	pthread_mutex_unlock(&run->err_mu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted @v[0..n). */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1e6;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

void uf_summary(struct uf_run *run, double wall_s, FILE *f)
{
	const struct uf_opts *o = run->o;
	size_t n = run->njobs, ok = atomic_load(&run->st.ok), failed = atomic_load(&run->st.failed);
	uint64_t bytes = atomic_load(&run->st.bytes), conns = atomic_load(&run->st.connections);
	uint64_t *lat = malloc((n ? n : 1) * sizeof(*lat));
	size_t nl = 0;
	for (size_t i = 0; lat && i < n; i++)
		if (run->jobs[i].status > 0)
			lat[nl++] = run->jobs[i].latency_ns;
	if (lat)
		qsort(lat, nl, sizeof(*lat), cmp_u64);
	double p50 = lat ? pct_ms(lat, nl, 50) : 0, p90 = lat ? pct_ms(lat, nl, 90) : 0;
	double p99 = lat ? pct_ms(lat, nl, 99) : 0;
	free(lat);
	double rps = wall_s > 0 ? (double)n / wall_s : 0;
	double mbps = wall_s > 0 ? (double)bytes / 1e6 / wall_s : 0;

	if (o->json) {
		fprintf(f, "{");
		if (o->label) {
			fprintf(f, "\"label\":");
			json_string(f, o->label);
			fprintf(f, ",");
		}
		fprintf(f,
		        "\"requests\":%zu,\"ok\":%zu,\"failed\":%zu,\"bytes\":%" PRIu64
		        ",\"wall_s\":%.6f,\"requests_per_s\":%.1f,\"mb_per_s\":%.3f,"
		        "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f},"
		        "\"connections\":%" PRIu64 ",\"jobs\":%u,\"threads\":%u,\"failures\":[",
		        n, ok, failed, bytes, wall_s, rps, mbps, p50, p90, p99, conns, o->jobs,
		        o->threads);
		bool first = true;
		for (size_t i = 0; i < n; i++) {
			if (!run->jobs[i].failed)
				continue;
			fprintf(f, "%s{\"url\":", first ? "" : ",");
			json_string(f, run->jobs[i].url);
			fprintf(f, ",\"status\":%d,\"reason\":", run->jobs[i].status);
			json_string(f, run->jobs[i].reason ? run->jobs[i].reason : "");
			fprintf(f, "}");
			first = false;
		}
		fprintf(f, "]}\n");
		return;
	}
	char b[32];
	human_bytes(bytes, b, sizeof(b));
	fprintf(f, "%s%s%zu requests: %zu ok, %zu failed; %s in %.3f s\n", o->label ? o->label : "",
	        o->label ? ": " : "", n, ok, failed, b, wall_s);
	fprintf(f,
	        "  %.0f requests/s, %.2f MB/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms; "
	        "%" PRIu64 " connection%s opened\n",
	        rps, mbps, p50, p90, p99, conns, conns == 1 ? "" : "s");
}
