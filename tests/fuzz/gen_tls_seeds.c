/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/gen_tls_seeds.c - records what urio's own TLS server sends during a handshake with
 * urio's client (TLS 1.2 and 1.3) and writes it, with truncations, as seeds of the tls_client
 * target. Client and server talk over two AF_UNIX socket pairs joined by a relay that copies each
 * way and keeps the server's bytes: no network. Built by meson (not by default); run by hand:
 *   ninja -C build tests/fuzz/gen_tls_seeds && build/tests/fuzz/gen_tls_seeds \
 *       tests/fuzz/corpus/tls_client
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

struct relay {
	int from, to;
	char *rec; /* what went through, if recorded */
	size_t len;
};

static int relay_main(void *arg)
{
	struct relay *r = arg;
	char buf[16384];
	for (;;) {
		ssize_t n = ur_recv(r->from, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (r->rec) {
			char *p = realloc(r->rec, r->len + (size_t)n);
			if (!p)
				abort();
			memcpy(p + r->len, buf, (size_t)n);
			r->rec = p;
			r->len += (size_t)n;
		}
		if (ur_send_all(r->to, buf, (size_t)n, MSG_NOSIGNAL) < 0)
			break;
	}
	ur_shutdown(r->to, SHUT_WR);
	return 0;
}

struct side {
	struct ur_tls_ctx *ctx;
	int fd;
	bool server;
	int res;
};

static int side_main(void *arg)
{
	struct side *sd = arg;
	struct ur_stream s;
	ur_stream_init(&s, sd->fd, 0);
	sd->res = sd->server ? ur_tls_server(&s, sd->ctx) : ur_tls_client(&s, sd->ctx, "localhost");
	if (sd->res == 0 && !sd->server) {
		char b[1];
		(void)ur_stream_read(&s, b, 1); /* takes the TLS 1.3 tickets; the server closes */
	}
	ur_stream_close(&s);
	return 0;
}

struct session {
	struct ur_tls_ctx *cctx, *sctx;
	char *flight;
	size_t len;
};

static int session_main(void *arg)
{
	struct session *ss = arg;
	int a[2], b[2]; /* client a[0] <-> a[1] relay b[0] <-> b[1] server */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b))
		abort();
	struct relay up = {.from = a[1], .to = b[0]};
	struct relay down = {.from = b[0], .to = a[1]};
	struct side cl = {.ctx = ss->cctx, .fd = a[0]};
	struct side sv = {.ctx = ss->sctx, .fd = b[1], .server = true};
	down.rec = malloc(1);
	struct ur_task *t[4];
	struct ur_loop *loop = ur_current_loop();
	if (ur_spawn(loop, &t[0], relay_main, &up, NULL) ||
	    ur_spawn(loop, &t[1], relay_main, &down, NULL) ||
	    ur_spawn(loop, &t[2], side_main, &cl, NULL) ||
	    ur_spawn(loop, &t[3], side_main, &sv, NULL))
		abort();
	ur_join(t[2]);
	ur_join(t[3]);
	shutdown(a[1], SHUT_RDWR);
	shutdown(b[0], SHUT_RDWR);
	ur_join(t[0]);
	ur_join(t[1]);
	close(a[1]);
	close(b[0]);
	if (cl.res != 0 || sv.res != 0) {
		fprintf(stderr, "gen_tls_seeds: handshake failed: client %s, server %s\n",
		        ur_strerror(cl.res), ur_strerror(sv.res));
		abort();
	}
	ss->flight = down.rec;
	ss->len = down.len;
	return 0;
}

static void put(const char *dir, const char *name, const unsigned char hdr[4], const char *p,
                size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(hdr, 1, 4, f) != 4 || fwrite(p, 1, len, f) != len || fclose(f))
		abort();
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct ur_tls_cert cert;
	if (ur_tls_cert_generate(&cert, NULL) != 0)
		return 1;
	struct ur_loop *loop;
	if (ur_loop_new(&loop, NULL) != 0)
		return 1;
	static const int versions[2] = {UR_TLS_V1_2, UR_TLS_V1_3};
	for (int v = 0; v < 2; v++) {
		struct ur_tls_opts co = {.flags = UR_TLS_NO_RESUME,
		                         .ca_pem = cert.ca_pem,
		                         .min_version = versions[v],
		                         .max_version = versions[v]};
		struct ur_tls_opts so = {
		    .cert_pem = cert.cert_pem, .key_pem = cert.key_pem, .alpn = "http/1.1"};
		struct session ss = {0};
		if (ur_tls_ctx_new(&ss.cctx, UR_TLS_CLIENT, &co) ||
		    ur_tls_ctx_new(&ss.sctx, UR_TLS_SERVER, &so))
			return 1;
		int res;
		if (ur_run(loop, session_main, &ss, &res) != 0 || res != 0)
			return 1;
		/* header: versions (bits 1-2: 1 = 1.2 only, 2 = 1.3 only), chunk sizes */
		unsigned char vbits = (unsigned char)((v + 1) << 1);
		const char *tag = v ? "tls13" : "tls12";
		char name[64];
		const unsigned char whole[4] = {vbits, 199, 199, 199}; /* 200-byte chunks */
		const unsigned char big[4] = {vbits, 255, 255, 255};   /* 28 KiB: all at once */
		const unsigned char small[4] = {vbits | 1, 4, 0, 17};  /* 5, 1, 18; EAGAIN first */
		const unsigned char mixed[4] = {vbits | 8, 201, 2, 150}; /* "127.0.0.1" */
		snprintf(name, sizeof(name), "%s-flight", tag);
		put(argv[1], name, whole, ss.flight, ss.len);
		snprintf(name, sizeof(name), "%s-flight-whole", tag);
		put(argv[1], name, big, ss.flight, ss.len);
		snprintf(name, sizeof(name), "%s-flight-small-chunks", tag);
		put(argv[1], name, small, ss.flight, ss.len);
		snprintf(name, sizeof(name), "%s-flight-ip", tag);
		put(argv[1], name, mixed, ss.flight, ss.len);
		/* both versions' flights to a client that allows both */
		const unsigned char any[4] = {0, 199, 199, 199};
		snprintf(name, sizeof(name), "%s-flight-any-version", tag);
		put(argv[1], name, any, ss.flight, ss.len);
		static const size_t cuts[] = {1, 5, 6, 60, 200};
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			if (cuts[i] >= ss.len)
				continue;
			snprintf(name, sizeof(name), "%s-cut-%zu", tag, cuts[i]);
			put(argv[1], name, whole, ss.flight, cuts[i]);
		}
		snprintf(name, sizeof(name), "%s-cut-half", tag);
		put(argv[1], name, whole, ss.flight, ss.len / 2);
		snprintf(name, sizeof(name), "%s-cut-last", tag);
		put(argv[1], name, whole, ss.flight, ss.len - 1);
		printf("%s: server flight of %zu bytes\n", tag, ss.len);
		free(ss.flight);
		ur_tls_ctx_free(ss.cctx);
		ur_tls_ctx_free(ss.sctx);
	}
	ur_loop_free(&loop);
	ur_tls_cert_free(&cert);
	return 0;
}
