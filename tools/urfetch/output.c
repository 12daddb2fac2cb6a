/* SPDX-License-Identifier: MIT */
/*
 * tools/urfetch/output.c - bodies reach stdout (or -o's file) in the order the URLs were given,
 * although they finish in any order and on any thread.
 *
 * A finished job is marked under the lock; whoever finds the job at the head of the line finished
 * and nobody writing becomes the writer: it writes, through its own loop, every finished job from
 * the head on, and lets go of the role when the next one is still running. The job that finishes
 * it later takes the role. So no job waits for a writer that has left, and two threads never
 * write at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <urio.h>

#include "urfetch.h"

void uf_out_init(struct uf_out *out, int fd)
{
	pthread_mutex_init(&out->mu, NULL);
	out->next = 0;
	out->writing = false;
	out->fd = fd;
	out->err = 0;
}

int uf_body_append(struct uf_job *j, const void *p, size_t len)
{
	if (len > j->cap - j->len) {
		size_t cap = j->cap ? j->cap : 4096;
		while (cap - j->len < len)
			cap *= 2;
		char *b = realloc(j->body, cap);
		if (!b)
			return -ENOMEM;
		j->body = b;
		j->cap = cap;
	}
	memcpy(j->body + j->len, p, len);
	j->len += len;
	return 0;
}

/* Bodies written by one writev at most (well under IOV_MAX). */
#define OUT_BATCH 64

/* Writes @n bodies with writev, looping over short writes. Returns 0 or an error. */
static int write_bodies(int fd, struct iovec *v, unsigned n)
{
	while (n > 0) {
		ssize_t w = ur_writev(fd, v, n, UR_OFF_CURRENT);
		if (w < 0)
			return (int)w;
		if (w == 0)
			return -EIO;
		while (n > 0 && (size_t)w >= v->iov_len) {
			w -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + w;
			v->iov_len -= (size_t)w;
		}
	}
	return 0;
}

void uf_out_done(struct uf_run *run, size_t i)
{
	struct uf_out *out = &run->out;

	pthread_mutex_lock(&out->mu);
	atomic_store(&run->jobs[i].state, UF_DONE);
	if (out->writing) {
		pthread_mutex_unlock(&out->mu);
		return;
	}
	out->writing = true;
	/* every finished job at the head of the line, a batch per writev (one ring operation) */
	while (out->next < run->njobs && atomic_load(&run->jobs[out->next].state) == UF_DONE) {
		size_t first = out->next, end = first;
		while (end < run->njobs && end - first < OUT_BATCH &&
		       atomic_load(&run->jobs[end].state) == UF_DONE)
			end++;
		pthread_mutex_unlock(&out->mu);
		struct iovec v[OUT_BATCH];
		unsigned n = 0;
		for (size_t k = first; k < end; k++)
			if (run->jobs[k].len)
				v[n++] = (struct iovec){run->jobs[k].body, run->jobs[k].len};
		if (n && !out->err) {
			/* in a task: the write goes through this thread's ring */
			int w = ur_task_current() ? write_bodies(out->fd, v, n) : -EINVAL;
			if (w < 0)
				out->err = w; /* only the writer touches it */
		}
		for (size_t k = first; k < end; k++) {
			struct uf_job *j = &run->jobs[k];
			free(j->body);
			j->body = NULL;
			j->len = j->cap = 0;
		}
		pthread_mutex_lock(&out->mu);
		for (size_t k = first; k < end; k++)
			atomic_store(&run->jobs[k].state, UF_WRITTEN);
		out->next = end;
	}
	out->writing = false;
	pthread_mutex_unlock(&out->mu);
}

int uf_remote_name(const char *url, char *name, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	p = strchr(p, '/'); /* the path, after the authority */
	const char *end = p ? p + strcspn(p, "?#") : NULL;
	const char *seg = NULL;
	if (p) {
		seg = end;
		while (seg > p && seg[-1] != '/')
			seg--;
	}
	size_t len = seg ? (size_t)(end - seg) : 0;
	/* a name that would leave the directory or hide itself is not taken as is */
	if (len == 0 || (len == 1 && seg[0] == '.') ||
	    (len == 2 && seg[0] == '.' && seg[1] == '.')) {
		seg = "index.html";
		len = strlen(seg);
	}
	if (len + 1 > size)
		return -ENAMETOOLONG;
	memcpy(name, seg, len);
	name[len] = 0;
	return 0;
}
