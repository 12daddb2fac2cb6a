/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/pages.c - what urfetch's own server serves (--demo, --serve, the tests): pages
 * whose bytes derive from their path, so a client can check every body without a copy of it,
 * and a few routes for tests (statuses, sizes, redirects, an echo, a delay, static files).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <urio.h>
#include <urio/http_server.h>

#include "pages.h"

#define MAX_BYTES ((size_t)64 << 20)

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Letters from a seed, a newline every 64 bytes: printable, and different for every seed. */
static void fill_pattern(char *out, size_t len, uint64_t seed)
{
	uint64_t x = 0;
	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			x = splitmix(&seed);
		out[i] = i % 64 == 63 ? '\n' : (char)('a' + (x & 0xff) % 26);
		x >>= 8;
	}
}

size_t uf_page(const char *path, size_t path_len, char *out)
{
	uint64_t seed = fnv1a(path, path_len);
	size_t len = 512 + (size_t)(seed % 1024);
	int n = snprintf(out, UF_PAGE_MAX, "urio demo page %.*s\n",
	                 (int)(path_len < 256 ? path_len : 256), path);
	fill_pattern(out + n, len - (size_t)n, seed);
	return len;
}

bool uf_page_check(const char *path, size_t path_len, const char *body, size_t len)
{
	char want[UF_PAGE_MAX];
	size_t n = uf_page(path, path_len, want);
	return n == len && memcmp(want, body, n) == 0;
}

/* "/prefix/NUMBER" -> NUMBER, or -1. */
static long route_num(const struct ur_http_server_req *rq, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (rq->path_len <= pl || memcmp(rq->path, prefix, pl) != 0 || rq->path_len - pl > 12)
		return -1;
	long v = 0;
	for (size_t i = pl; i < rq->path_len; i++) {
		if (rq->path[i] < '0' || rq->path[i] > '9')
			return -1;
		v = v * 10 + (rq->path[i] - '0');
	}
	return v;
}

__attribute__((format(printf, 3, 4))) static int reply_text(struct ur_http_server_resp *rs,
                                                            int status, const char *fmt, ...)
{
	char *b = malloc(128);
	if (!b)
		return -ENOMEM;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, 128, fmt, ap);
	va_end(ap);
	int r = ur_http_resp_take(rs, status, "text/plain", b, (size_t)n);
	if (r < 0)
		free(b);
	return r;
}

int uf_pages_handler(const struct ur_http_server_req *rq, struct ur_http_server_resp *rs, void *arg)
{
	const struct uf_pages *pg = arg;
	long v;

	if ((v = route_num(rq, "/status/")) >= 0) {
		if (v < 200 || v > 999)
			return reply_text(rs, 400, "bad status %ld\n", v);
		return reply_text(rs, (int)v, "status %ld\n", v);
	}
	if ((v = route_num(rq, "/bytes/")) >= 0) {
		if ((size_t)v > MAX_BYTES)
			return reply_text(rs, 400, "at most %ld bytes\n", (long)MAX_BYTES);
		char *b = malloc((size_t)v + 1);
		if (!b)
			return -ENOMEM;
		fill_pattern(b, (size_t)v, (uint64_t)v);
		int r = ur_http_resp_take(rs, 200, "application/octet-stream", b, (size_t)v);
		if (r < 0)
			free(b);
		return r;
	}
	if ((v = route_num(rq, "/redirect/")) >= 0) {
		/* one block holds the body and the Location value: both live until the send */
		char *b = malloc(128);
		if (!b)
			return -ENOMEM;
		int n = snprintf(b, 64, "see /page/%ld\n", v);
		snprintf(b + 64, 64, "/page/%ld", v);
		int r = ur_http_resp_take(rs, 302, "text/plain", b, (size_t)n);
		if (r < 0) {
			free(b);
			return r;
		}
		return ur_http_resp_header(rs, "Location", b + 64);
	}
	if (rq->path_len == 5 && memcmp(rq->path, "/echo", 5) == 0) {
		char *b = malloc(rq->body_len + 1);
		if (!b)
			return -ENOMEM;
		memcpy(b, rq->body, rq->body_len);
		int r = ur_http_resp_take(rs, 200, "application/octet-stream", b, rq->body_len);
		if (r < 0)
			free(b);
		return r;
	}
	if ((v = route_num(rq, "/delay/")) >= 0) {
		int r = ur_sleep((uint64_t)v * UR_MSEC);
		if (r < 0)
			return r;
	}
	if (rq->path_len > 8 && memcmp(rq->path, "/static/", 8) == 0) {
		char name[256];
		size_t nl = rq->path_len - 8;
		if (!pg || pg->dirfd < 0 || nl >= sizeof(name))
			return ur_http_resp_mem(rs, 404, "text/plain", "not found\n", 10);
		memcpy(name, rq->path + 8, nl);
		name[nl] = 0;
		if (strstr(name, "..") || name[0] == '/')
			return ur_http_resp_mem(rs, 403, "text/plain", "forbidden\n", 10);
		int r = ur_http_resp_file(rs, pg->dirfd, name, "application/octet-stream");
		if (r == -ENOENT || r == -EISDIR)
			return ur_http_resp_mem(rs, 404, "text/plain", "not found\n", 10);
		if (r < 0)
			return ur_http_resp_mem(rs, 403, "text/plain", "forbidden\n", 10);
		return 0;
	}
	char *b = malloc(UF_PAGE_MAX);
	if (!b)
		return -ENOMEM;
	size_t n = uf_page(rq->path, rq->path_len, b);
	int r = ur_http_resp_take(rs, 200, "text/plain", b, n);
	if (r < 0)
		free(b);
	return r;
}
