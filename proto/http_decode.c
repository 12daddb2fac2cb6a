/* SPDX-License-Identifier: MIT */
/*
 * proto/http_decode.c - gzip and deflate bodies, decoded with zlib, with a cap on the decoded
 * size so that a small compressed body cannot expand into gigabytes (a "decompression bomb").
 *
 * "deflate" in HTTP means the zlib format (RFC 9110 §8.4.1.2), but some servers send raw deflate;
 * like curl and browsers, the first byte decides: a zlib header, else raw. gzip may hold several
 * members one after another (RFC 1952 §2.2): each is decoded in turn.
 */
#include <errno.h>
#include <stdlib.h>
#include <zlib.h>

#include "http_priv.h"

#define DECODE_OUT 16384

struct http_decoder {
	z_stream z;
	enum http_coding coding;
	uint64_t max, total;
	bool started, ended, inited;
	unsigned char out[DECODE_OUT];
};

int ur__http_decoder_new(struct http_decoder **out, enum http_coding coding, uint64_t max)
{
	struct http_decoder *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->coding = coding;
	d->max = max;
	*out = d;
	return 0;
}

static int start(struct http_decoder *d, unsigned char first)
{
	int wbits;
	if (d->coding == HTTP_CODING_GZIP)
		wbits = 15 + 16; /* gzip only */
	else
		/* a zlib header: CM = 8 and the header's check (RFC 1950 §2.2); else raw deflate */
		wbits = (first & 0x0f) == 8 ? 15 : -15;
	if (inflateInit2(&d->z, wbits) != Z_OK)
		return -ENOMEM;
	d->inited = true;
	d->started = true;
	return 0;
}

int ur__http_decoder_feed(struct http_decoder *d, const void *data, size_t len,
                          http_decode_sink *sink, void *arg)
{
	const unsigned char *in = data;
	while (len > 0) {
		if (!d->started) {
			int r = start(d, in[0]);
			if (r < 0)
				return r;
		}
		if (d->ended) {
			/* bytes after the end: another gzip member, or garbage */
			if (d->coding != HTTP_CODING_GZIP)
				return UR_EHTTP_DECODE;
			if (inflateReset(&d->z) != Z_OK)
				return UR_EHTTP_DECODE;
			d->ended = false;
		}
		uInt chunk = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
		d->z.next_in = (unsigned char *)in;
		d->z.avail_in = chunk;
		do {
			d->z.next_out = d->out;
			d->z.avail_out = DECODE_OUT;
			int zr = inflate(&d->z, Z_NO_FLUSH);
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
				return UR_EHTTP_DECODE;
			size_t n = DECODE_OUT - d->z.avail_out;
			if (n) {
				if (n > d->max - d->total)
					return UR_EHTTP_BODY_TOO_BIG;
				d->total += n;
				int r = sink(arg, d->out, n);
				if (r < 0)
					return r;
			}
			if (zr == Z_STREAM_END) {
				d->ended = true;
				break;
			}
			if (zr == Z_BUF_ERROR && n == 0)
				break; /* needs more input */
		} while (d->z.avail_in > 0 || d->z.avail_out == 0);
		size_t used = chunk - d->z.avail_in;
		if (used == 0 && !d->ended)
			return UR_EHTTP_DECODE; /* no progress: never loop on the same bytes */
		in += used;
		len -= used;
	}
	return 0;
}

int ur__http_decoder_finish(struct http_decoder *d)
{
	/* an empty body decodes to nothing; a started stream must have ended */
	return !d->started || d->ended ? 0 : UR_EHTTP_DECODE;
}

void ur__http_decoder_free(struct http_decoder *d)
{
	if (!d)
		return;
	if (d->inited)
		inflateEnd(&d->z);
	free(d);
}
