/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_readuntil.c - libFuzzer target for the stream's buffered reads
 * (ur_stream_read_until, mixed with ur_stream_read_exactly and ur_stream_read).
 *
 * The stream runs over an in-memory transport (struct ur_stream_ops) that hands out the input's
 * body in chunks whose sizes come from the header, so the split points are fuzzed; it reports end
 * of stream after the last byte. A task on a loop made once per process reads the body with calls
 * chosen by the header and checks each result against a model of the body:
 *
 *   - a record from read_until is the body's next bytes up to and including the first delimiter,
 *     and returns exactly when that fits within min(max, stream limit);
 *   - UR_ELIMIT and UR_EINCOMPLETE are returned exactly when the model says so, and consume
 *     nothing (the next read returns the same bytes);
 *   - every byte read is the body's next byte: what was read, concatenated, is the body;
 *   - end of stream (0, UR_EINCOMPLETE) comes after exactly all of it, and stays.
 *
 * Any violation abort()s. Header (HDR_LEN bytes, then the body):
 *   [0] delimiter length 1 + (b & 3)   [1..4] the delimiter    [5,6] max: 1 + (LE16 % 4096)
 *   [7] the stream's limit: 0 the default, else b * 8           [8] the calls (2 bits a step)
 *   [9..11] chunk sizes, cycled: 1 + b
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <urio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR_LEN 12
#define BIG     8192

struct mem {
	const uint8_t *data; /* the body */
	size_t len, off;
	const uint8_t *chunks; /* 3 chunk sizes */
	unsigned turn;
};

static ssize_t mem_read(struct ur_stream *s, void *buf, size_t len)
{
	struct mem *m = s->transport_;
	if (len == 0)
		abort(); /* the stream never asks for nothing */
	size_t left = m->len - m->off;
	if (left == 0)
		return 0;
	size_t n = 1 + (size_t)m->chunks[m->turn++ % 3];
	n = n < len ? n : len;
	n = n < left ? n : left;
	memcpy(buf, m->data + m->off, n);
	m->off += n;
	return (ssize_t)n;
}

static ssize_t mem_writev(struct ur_stream *s, const struct iovec *iov, unsigned iovcnt)
{
	(void)s;
	size_t n = 0;
	for (unsigned i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

static int mem_shutdown(struct ur_stream *s)
{
	(void)s;
	return 0;
}

static void mem_release(struct ur_stream *s)
{
	(void)s;
}

static const struct ur_stream_ops mem_ops = {
    .read = mem_read,
    .writev = mem_writev,
    .shutdown = mem_shutdown,
    .release = mem_release,
};

struct run {
	const uint8_t *hdr, *body;
	size_t n;
};

static size_t min_sz(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* The model of read_until at @pos: the record's length, or UR_ELIMIT / UR_EINCOMPLETE. */
static ssize_t expect_until(const uint8_t *body, size_t n, size_t pos, const uint8_t *delim,
                            size_t dlen, size_t max, size_t limit)
{
	size_t cap = min_sz(max, limit), left = n - pos;
	const uint8_t *p = left >= dlen ? memmem(body + pos, left, delim, dlen) : NULL;
	if (p) {
		size_t rec = (size_t)(p - (body + pos)) + dlen;
		return rec <= cap ? (ssize_t)rec : UR_ELIMIT;
	}
	return left >= cap ? UR_ELIMIT : UR_EINCOMPLETE;
}

static int run_main(void *arg)
{
	struct run *r = arg;
	const uint8_t *h = r->hdr, *body = r->body;
	size_t n = r->n, pos = 0;
	size_t dlen = 1 + (h[0] & 3u);
	const uint8_t *delim = h + 1;
	size_t max = 1 + ((size_t)h[5] | (size_t)h[6] << 8) % 4096;
	size_t limit = h[7] ? (size_t)h[7] * 8 : 0;
	static char buf[UR_STREAM_LIMIT_DEFAULT + BIG];

	static int devnull = -1;
	if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		abort();
	int fd = dup(devnull);
	struct ur_stream s;
	if (fd < 0 || ur_stream_init(&s, fd, limit) != 0)
		abort();
	if (!limit)
		limit = UR_STREAM_LIMIT_DEFAULT;
	struct mem m = {.data = body, .len = n, .chunks = h + 9};
	ur_stream_set_transport(&s, &mem_ops, &m);

	for (unsigned step = 0; pos < n; step++) {
		if (step > 4 * n + 64)
			abort(); /* each step consumes a byte at least */
		unsigned op = (h[8] >> (2 * (step & 3))) & 3u;
		size_t k = 1 + (size_t)h[9 + step % 3] * (step & 1 ? 17 : 1);
		bool drain = false;
		if (op <= 1) {
			ssize_t want = expect_until(body, n, pos, delim, dlen, max, limit);
			ssize_t got = ur_stream_read_until(&s, delim, dlen, buf, max);
			if (got != want)
				abort();
			if (got > 0) {
				if ((size_t)got > max || (size_t)got < dlen ||
				    memcmp(buf + got - dlen, delim, dlen) != 0 ||
				    memcmp(buf, body + pos, (size_t)got) != 0)
					abort();
				pos += (size_t)got;
			} else {
				drain = true;
			}
		} else if (op == 2) {
			ssize_t got = ur_stream_read_exactly(&s, buf, k);
			if (n - pos >= k) {
				if (got != (ssize_t)k || memcmp(buf, body + pos, k) != 0)
					abort();
				pos += k;
			} else {
				if (got != UR_EINCOMPLETE)
					abort();
				if (k > limit) {
					/* too large to hold back: the rest is the caller's, in buf
					 */
					if (memcmp(buf, body + pos, n - pos) != 0)
						abort();
					pos = n;
				} else {
					drain = true;
				}
			}
		} else {
			ssize_t got = ur_stream_read(&s, buf, k);
			if (got <= 0 || (size_t)got > k || (size_t)got > n - pos ||
			    memcmp(buf, body + pos, (size_t)got) != 0)
				abort();
			pos += (size_t)got;
		}
		if (drain && pos < n) {
			/* the failed call consumed nothing: the next bytes are still the body's */
			size_t want = 1 + step % 7;
			ssize_t got = ur_stream_read(&s, buf, want);
			if (got <= 0 || (size_t)got > want || (size_t)got > n - pos ||
			    memcmp(buf, body + pos, (size_t)got) != 0)
				abort();
			pos += (size_t)got;
		}
	}
	/* end of stream after exactly all the bytes, and it stays */
	size_t left;
	ur_stream_buffered(&s, &left);
	if (pos != n || left != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		if (ur_stream_read(&s, buf, 1 + (size_t)i * BIG) != 0 ||
		    ur_stream_read_exactly(&s, buf, 1) != UR_EINCOMPLETE ||
		    ur_stream_read_until(&s, delim, dlen, buf, max) != UR_EINCOMPLETE)
			abort();
	}
	if (ur_stream_write_all(&s, body, n) != (ssize_t)n)
		abort();
	ur_stream_close(&s);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ur_loop *loop;
	if (size < HDR_LEN)
		return 0;
	if (!loop && ur_loop_new(&loop, NULL) != 0)
		abort();
	/* an exact-size copy of the body, so ASan sees any read past its end */
	size_t n = size - HDR_LEN;
	uint8_t *body = malloc(n ? n : 1);
	memcpy(body, data + HDR_LEN, n);
	struct run r = {.hdr = data, .body = body, .n = n};
	int res = -1;
	if (ur_run(loop, run_main, &r, &res) != 0 || res != 0)
		abort();
	free(body);
	return 0;
}
