/* SPDX-License-Identifier: MIT */
/*
 * tls.c - asyncio.open_connection(host, port, ssl=ctx) and start_server(..., ssl=ctx) in urio:
 * a TLS server task and a client task in one loop, with a certificate made in memory and trusted
 * explicitly by the client (the way tests and demos do it), then a refusal and its reason.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

struct demo {
	struct ur_tls_cert cert;
	int listener;
	uint16_t port;
	int server_result;
};

/* start_server(handle, ssl=server_ctx): one connection, echoes a line back. */
static int server(void *arg)
{
	struct demo *d = arg;
	struct ur_tls_ctx *ctx;
	struct ur_tls_opts o = {.cert_pem = d->cert.cert_pem, .key_pem = d->cert.key_pem};
	struct ur_stream s;
	char line[128];

	if (ur_tls_ctx_new(&ctx, UR_TLS_SERVER, &o) < 0)
		return d->server_result = -1;
	for (int i = 0; i < 2; i++) {
		int fd = ur_accept(d->listener, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 || ur_stream_init(&s, fd, 0) < 0)
			break;
		ur_stream_set_timeout(&s, 5 * UR_SEC);
		if (ur_tls_server(&s, ctx) == 0) {
			ssize_t n = ur_stream_read_until(&s, "\n", 1, line, sizeof(line));
			if (n > 0)
				ur_stream_write_all(&s, line, (size_t)n);
			ur_stream_shutdown(&s); /* close_notify, then FIN */
		}
		ur_stream_close(&s);
	}
	ur_tls_ctx_free(ctx);
	return d->server_result = 0;
}

/* reader, writer = await open_connection("localhost", port, ssl=ctx) */
static int fetch(struct demo *d, struct ur_tls_ctx *ctx, char *reply, size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons(d->port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct ur_stream s;
	int fd = ur_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r = fd < 0 ? fd : ur_connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (r < 0)
		return r;
	ur_stream_init(&s, fd, 0);
	ur_stream_set_timeout(&s, 5 * UR_SEC); /* an absolute deadline, not a per-call one */
	r = ur_tls_client(&s, ctx, "localhost");
	if (r < 0) {
		printf("refused: %s (%s)\n", ur_strerror_name(r), ur_tls_error_text(&s));
	} else {
		/* it would bound every later call too: renew it (UR_NO_DEADLINE lifts it) */
		ur_stream_set_timeout(&s, 5 * UR_SEC);
		const char *alpn;
		size_t alen = ur_tls_alpn(&s, &alpn);
		printf("TLS %s, ALPN \"%.*s\"\n", ur_tls_version(&s) == UR_TLS_V1_3 ? "1.3" : "1.2",
		       (int)alen, alpn);
		ssize_t n = ur_stream_write_all(&s, "hello over TLS\n", 15);
		if (n > 0)
			n = ur_stream_read_until(&s, "\n", 1, reply, len - 1);
		reply[n > 0 ? n : 0] = '\0';
		r = n < 0 ? (int)n : 0;
	}
	ur_stream_close(&s);
	return r;
}

static int main_task(void *arg)
{
	struct demo *d = arg;
	struct ur_task *srv;
	struct ur_tls_ctx *trusting, *strict;
	char reply[64];

	ur_spawn(ur_current_loop(), &srv, server, d, NULL);
	/* ssl=ssl.create_default_context(cadata=...): trust our CA only */
	struct ur_tls_opts o = {.ca_pem = d->cert.ca_pem};
	ur_tls_ctx_new(&trusting, UR_TLS_CLIENT, &o);
	/* ssl=True: the system trust store, which has never heard of our CA */
	ur_tls_ctx_new(&strict, UR_TLS_CLIENT, NULL);

	int ok =
	    fetch(d, trusting, reply, sizeof(reply)) == 0 && strcmp(reply, "hello over TLS\n") == 0;
	printf("echoed: %s", reply);
	ok &= fetch(d, strict, reply, sizeof(reply)) == UR_ETLSVERIFY;
	ur_join(srv);
	ur_tls_ctx_free(trusting);
	ur_tls_ctx_free(strict);
	return ok && d->server_result == 0 ? 0 : 1;
}

int main(void)
{
	struct demo d = {0};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	int result = 1;

	if (ur_tls_cert_generate(&d.cert, NULL) < 0) /* localhost, 127.0.0.1, ::1 */
		return 1;
	d.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (bind(d.listener, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(d.listener, 8) < 0 ||
	    getsockname(d.listener, (struct sockaddr *)&a, &alen) < 0)
		return 1;
	d.port = ntohs(a.sin_port);
	if (ur_run(NULL, main_task, &d, &result) < 0)
		return 1;
	close(d.listener);
	ur_tls_cert_free(&d.cert);
	return result;
}
