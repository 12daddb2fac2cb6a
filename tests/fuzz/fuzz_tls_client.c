/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_tls_client.c - libFuzzer target for the TLS client handshake (proto/tls.c over
 * OpenSSL) fed a fuzzed server flight from memory.
 *
 * TLS does not read through the stream's transport: it moves ciphertext with ur_recv, ur_send,
 * ur_poll and ur_shutdown on the stream's descriptor (proto/tls.c). This target compiles
 * proto/tls.c and proto/stream.c in with those four names mapped to the functions below
 * (-Dur_recv=fuzz_recv ..., tests/fuzz/meson.build), which serve the input's body as the server's
 * bytes in chunks whose sizes come from the header, then end of stream, and accept and discard
 * whatever the client sends. The descriptor is a duplicate of /dev/null: nothing here touches a
 * network (getpeername fails on it, so the session cache key has port 0).
 *
 * The client verifies the peer against a CA made once per process (ur_tls_cert_generate), so no
 * input can authenticate; the handshake must fail with a clean error: a negative urio code with a
 * ur_strerror text and a ur_tls_error_text reason. Success, a crash, a hang or a leak is a defect.
 *
 * Header (HDR_LEN bytes, then the flight):
 *   [0] bit 0: non-blocking receives find nothing first (the buffer-release path: recv
 *       MSG_DONTWAIT -> -EAGAIN, then poll); bits 1-2: versions (1.2-1.3, 1.2 only, 1.3 only);
 *       bit 3: host "127.0.0.1" instead of "localhost"
 *   [1..3] chunk sizes, cycled: 1 + b below 200, else (b - 199) * 512
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <urio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The socket calls of proto/tls.c and proto/stream.c, mapped here by the build. */
ssize_t fuzz_recv(int fd, void *buf, size_t len, int flags);
ssize_t fuzz_send(int fd, const void *buf, size_t len, int flags);
int fuzz_poll(int fd, unsigned events);
int fuzz_shutdown(int fd, int how);

#define HDR_LEN 4

static struct {
	const uint8_t *data;
	size_t len, off;
	size_t chunk_left; /* bytes of the current chunk not yet handed out */
	const uint8_t *chunks;
	unsigned turn;
	bool eagain, polled;
	int fd;
} peer = {.fd = -1};

static size_t chunk_size(uint8_t b)
{
	return b < 200 ? 1 + (size_t)b : (size_t)(b - 199) * 512;
}

ssize_t fuzz_recv(int fd, void *buf, size_t len, int flags)
{
	if (fd != peer.fd || !ur_task_current())
		abort();
	if (peer.eagain && (flags & MSG_DONTWAIT) && !peer.polled)
		return -EAGAIN;
	peer.polled = false;
	if (len == 0)
		abort();
	size_t left = peer.len - peer.off;
	if (left == 0)
		return 0;
	if (peer.chunk_left == 0)
		peer.chunk_left = chunk_size(peer.chunks[peer.turn++ % 3]);
	size_t n = peer.chunk_left < len ? peer.chunk_left : len;
	n = n < left ? n : left;
	memcpy(buf, peer.data + peer.off, n);
	peer.off += n;
	peer.chunk_left -= n;
	return (ssize_t)n;
}

ssize_t fuzz_send(int fd, const void *buf, size_t len, int flags)
{
	(void)buf;
	(void)flags;
	if (fd != peer.fd || !ur_task_current())
		abort();
	return (ssize_t)len;
}

int fuzz_poll(int fd, unsigned events)
{
	if (fd != peer.fd || !ur_task_current() || !(events & POLLIN))
		abort();
	peer.polled = true;
	return POLLIN;
}

int fuzz_shutdown(int fd, int how)
{
	(void)how;
	if (fd != peer.fd)
		abort();
	return 0;
}

static struct ur_tls_ctx *ctxs[3];

static void make_contexts(void)
{
	static const int vmin[3] = {0, UR_TLS_V1_2, UR_TLS_V1_3};
	static const int vmax[3] = {0, UR_TLS_V1_2, UR_TLS_V1_3};
	struct ur_tls_cert cert;
	if (ur_tls_cert_generate(&cert, NULL) != 0)
		abort();
	for (int i = 0; i < 3; i++) {
		char err[256] = "";
		struct ur_tls_opts o = {
		    .flags = UR_TLS_NO_RESUME,
		    .ca_pem = cert.ca_pem,
		    .min_version = vmin[i],
		    .max_version = vmax[i],
		    .errbuf = err,
		    .errlen = sizeof(err),
		};
		if (ur_tls_ctx_new(&ctxs[i], UR_TLS_CLIENT, &o) != 0) {
			fprintf(stderr, "fuzz_tls_client: %s\n", err);
			abort();
		}
	}
	ur_tls_cert_free(&cert);
}

static int run_main(void *arg)
{
	const uint8_t *h = arg;
	static int devnull = -1;
	if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		abort();
	struct ur_stream s;
	peer.fd = dup(devnull);
	if (peer.fd < 0 || ur_stream_init(&s, peer.fd, 0) != 0)
		abort();
	struct ur_tls_ctx *ctx = ctxs[((h[0] >> 1) & 3u) % 3];
	int r = ur_tls_client(&s, ctx, h[0] & 8 ? "127.0.0.1" : "localhost");
	const char *text = ur_tls_error_text(&s);
	if (r >= 0 || !ur_strerror(r)[0] || !text[0])
		abort();
	if (getenv("FUZZ_TLS_VERBOSE")) /* where a replayed input stops */
		fprintf(stderr, "%s: %s\n", ur_strerror_name(r), text);
	/* failed, TLS stays installed: further calls return the same error */
	char b[16];
	if (ur_stream_read(&s, b, sizeof(b)) != r || ur_stream_write_all(&s, "x", 1) != r)
		abort();
	ur_stream_close(&s);
	peer.fd = -1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ur_loop *loop;
	if (size < HDR_LEN)
		return 0;
	if (!loop) {
		if (ur_loop_new(&loop, NULL) != 0)
			abort();
		make_contexts();
	}
	/* an exact-size copy of the flight, so ASan sees any read past its end */
	size_t n = size - HDR_LEN;
	uint8_t *flight = malloc(n ? n : 1);
	memcpy(flight, data + HDR_LEN, n);
	peer.data = flight;
	peer.len = n;
	peer.off = peer.chunk_left = 0;
	peer.chunks = data + 1;
	peer.turn = 0;
	peer.eagain = data[0] & 1;
	peer.polled = false;
	int res = -1;
	if (ur_run(loop, run_main, (void *)data, &res) != 0 || res != 0)
		abort();
	free(flight);
	return 0;
}
