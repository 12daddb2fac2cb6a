/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/fault_server.h - a scripted HTTP fault server for the client's tests.
 *
 * Raw blocking sockets on threads of their own, so what the client sees is exactly the bytes of
 * the script, good or bad. Each accepted connection runs a script (connection i runs script
 * min(i, nscripts - 1)): read a request, send bytes, drip bytes, flood, close, reset, loop. The
 * server counts connections and requests and keeps the last request (head and body) it read.
 * It listens on 127.0.0.1 with a port from the kernel, and fs_stop() ends every thread.
 */
#ifndef UR_TEST_FAULT_SERVER_H
#define UR_TEST_FAULT_SERVER_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "../helpers.h"

enum fs_op {
	FS_END = 0,
	FS_REQ,   /* read one request (head, and a Content-Length or chunked body); EOF ends */
	FS_SEND,  /* send data (len, or strlen(data)) */
	FS_DRIP,  /* send data one byte every `ms` milliseconds */
	FS_FLOOD, /* send `len` bytes of 'x' (0: until the peer goes away) */
	FS_CLOSE, /* shutdown and close */
	FS_RESET, /* close with SO_LINGER 0: the peer gets a reset */
	FS_LOOP,  /* back to the first step */
	FS_HOLD,  /* read until the peer closes (or the server stops) */
};

struct fs_step {
	enum fs_op op;
	const char *data;
	size_t len;
	int ms;
};

#define FS_MAX_CONNS 64

struct fault_server {
	int lfd;
	uint16_t port;
	const struct fs_step *const *scripts;
	size_t nscripts;
	pthread_t acceptor;
	pthread_t threads[FS_MAX_CONNS];
	int fds[FS_MAX_CONNS];
	atomic_int conns;
	atomic_int requests;
	atomic_int shutdowns; /* FS_CLOSE steps done: the client has the server's FIN */
	atomic_bool stop;
	int stop_pipe[2];
	pthread_mutex_t mu;
	char last_head[8192]; /* the last request's head */
	char last_body[65536];
	size_t last_body_len;
	char heads[8][1024]; /* the first 8 request heads, in arrival order */
};

struct fs_conn {
	struct fault_server *s;
	int fd, idx;
	const struct fs_step *script;
};

/* Waits up to @ms for the stop pipe; true if the server is stopping. */
static inline bool fs_pause(struct fault_server *s, int ms)
{
	struct pollfd p = {.fd = s->stop_pipe[0], .events = POLLIN};
	return poll(&p, 1, ms) > 0 || atomic_load(&s->stop);
}

/* Reads one request into buf; returns its total length, 0 at EOF, -1 on error. */
static inline ssize_t fs_read_request(struct fault_server *s, int fd, char *buf, size_t cap)
{
	size_t have = 0;
	char *end = NULL;
	while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
		if (have == cap)
			return -1;
		ssize_t n = recv(fd, buf + have, cap - have, 0);
		if (n <= 0)
			return n;
		have += (size_t)n;
	}
	size_t head = (size_t)(end + 4 - buf);
	size_t body = 0;
	bool chunked = false;
	for (char *p = buf; p < buf + head; p++) {
		if (strncasecmp(p, "\r\nContent-Length:", 17) == 0)
			body = strtoul(p + 17, NULL, 10);
		if (strncasecmp(p, "\r\nTransfer-Encoding: chunked", 28) == 0)
			chunked = true;
	}
	size_t need = head + body;
	if (chunked) {
		while (!memmem(buf + head, have - head, "\r\n0\r\n\r\n", 7) &&
		       !(have - head >= 5 && memcmp(buf + head, "0\r\n\r\n", 5) == 0)) {
			if (have == cap)
				return -1;
			ssize_t n = recv(fd, buf + have, cap - have, 0);
			if (n <= 0)
				return -1;
			have += (size_t)n;
		}
		need = have;
	}
	while (have < need) {
		if (have == cap)
			return -1;
		ssize_t n = recv(fd, buf + have, cap - have, 0);
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	pthread_mutex_lock(&s->mu);
	int i = atomic_fetch_add(&s->requests, 1);
	size_t hl = head < sizeof(s->last_head) - 1 ? head : sizeof(s->last_head) - 1;
	memcpy(s->last_head, buf, hl);
	s->last_head[hl] = 0;
	if (i < 8) {
		size_t l8 = head < sizeof(s->heads[i]) - 1 ? head : sizeof(s->heads[i]) - 1;
		memcpy(s->heads[i], buf, l8);
		s->heads[i][l8] = 0;
	}
	s->last_body_len = need - head < sizeof(s->last_body) ? need - head : sizeof(s->last_body);
	memcpy(s->last_body, buf + head, s->last_body_len);
	pthread_mutex_unlock(&s->mu);
	return (ssize_t)need;
}

static inline void *fs_conn_main(void *arg)
{
	struct fs_conn *c = arg;
	struct fault_server *s = c->s;
	int fd = c->fd;
	static __thread char buf[128 * 1024];
	bool closed = false;

	for (size_t i = 0; !closed && c->script[i].op != FS_END && !atomic_load(&s->stop); i++) {
		const struct fs_step *st = &c->script[i];
		size_t len = st->len ? st->len : (st->data ? strlen(st->data) : 0);
		switch (st->op) {
		case FS_REQ:
			if (fs_read_request(s, fd, buf, sizeof(buf)) <= 0)
				closed = true;
			break;
		case FS_SEND:
			if (send(fd, st->data, len, MSG_NOSIGNAL) != (ssize_t)len)
				closed = true;
			break;
		case FS_DRIP:
			for (size_t k = 0; k < len && !closed; k++) {
				if (send(fd, st->data + k, 1, MSG_NOSIGNAL) != 1 ||
				    fs_pause(s, st->ms))
					closed = true;
			}
			break;
		case FS_FLOOD: {
			static __thread char x[16384];
			memset(x, 'x', sizeof(x));
			size_t sent = 0;
			while (!atomic_load(&s->stop) && (st->len == 0 || sent < st->len)) {
				size_t n = sizeof(x);
				if (st->len && st->len - sent < n)
					n = st->len - sent;
				ssize_t w = send(fd, x, n, MSG_NOSIGNAL);
				if (w <= 0) {
					closed = true;
					break;
				}
				sent += (size_t)w;
			}
			break;
		}
		case FS_CLOSE:
			shutdown(fd, SHUT_RDWR);
			atomic_fetch_add(&s->shutdowns, 1);
			closed = true;
			break;
		case FS_RESET: {
			/* closed at once: SO_LINGER 0 makes the close send a reset */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			pthread_mutex_lock(&s->mu);
			close(fd);
			s->fds[c->idx] = -1;
			pthread_mutex_unlock(&s->mu);
			free(c);
			return NULL;
		}
		case FS_LOOP:
			i = (size_t)-1;
			break;
		case FS_HOLD:
			while (recv(fd, buf, sizeof(buf), 0) > 0)
				;
			closed = true;
			break;
		case FS_END:
			break;
		}
	}
	if (!closed) /* script over: wait for the client to finish, then close */
		while (!atomic_load(&s->stop) && recv(fd, buf, sizeof(buf), 0) > 0)
			;
	free(c);
	return NULL;
}

static inline void *fs_accept_main(void *arg)
{
	struct fault_server *s = arg;
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 || atomic_load(&s->stop)) {
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		int i = atomic_load(&s->conns);
		if (i >= FS_MAX_CONNS) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct fs_conn *c = malloc(sizeof(*c));
		c->s = s;
		c->fd = fd;
		c->idx = i;
		c->script = s->scripts[(size_t)i < s->nscripts ? (size_t)i : s->nscripts - 1];
		s->fds[i] = fd;
		pthread_create(&s->threads[i], NULL, fs_conn_main, c);
		atomic_store(&s->conns, i + 1);
	}
}

static inline void fs_start(struct fault_server *s, const struct fs_step *const *scripts,
                            size_t nscripts)
{
	memset(s, 0, sizeof(*s));
	s->scripts = scripts;
	s->nscripts = nscripts;
	pthread_mutex_init(&s->mu, NULL);
	cr_assert_eq(pipe2(s->stop_pipe, O_CLOEXEC), 0);
	s->lfd = t_listen_tcp(&s->port);
	pthread_create(&s->acceptor, NULL, fs_accept_main, s);
}

static inline void fs_stop(struct fault_server *s)
{
	atomic_store(&s->stop, true);
	cr_assert_eq(write(s->stop_pipe[1], "x", 1), 1);
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->acceptor, NULL);
	int n = atomic_load(&s->conns);
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&s->mu);
		if (s->fds[i] >= 0)
			shutdown(s->fds[i], SHUT_RDWR);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->threads[i], NULL);
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	}
	close(s->lfd);
	close(s->stop_pipe[0]);
	close(s->stop_pipe[1]);
	pthread_mutex_destroy(&s->mu);
}

/* "http://127.0.0.1:PORT" + @path into @buf. */
static inline const char *fs_url(const struct fault_server *s, const char *path, char *buf,
                                 size_t cap)
{
	snprintf(buf, cap, "http://127.0.0.1:%u%s", s->port, path);
	return buf;
}

#endif
