/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_http1.c - libFuzzer targets for the HTTP/1.1 response parser with the chunked
 * decoder (FUZZ_RESPONSE) and the request parser (FUZZ_REQUEST).
 *
 * Input: byte 0 picks the request method (responses), bytes 1 and 2 pick two cut points; the rest
 * is the message. The message is parsed whole and again with bytes arriving at the cut points, and
 * the two outcomes must be the same, field by field: incremental parsing is what is fuzzed, not
 * only whole buffers. The message is copied to a buffer of its exact size so ASan sees any read
 * past its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/http1_cases.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "CONNECT", "POST"};
	if (size < 3)
		return 0;
	const char *method = methods[data[0] & 3];
	size_t n = size - 3;
	char *buf = malloc(n ? n : 1);
	memcpy(buf, data + 3, n);
	size_t cuts[2];
	size_t nc = 0;
	if (n > 1) {
		size_t a = 1 + data[1] % (n - 1), b = 1 + data[2] % (n - 1);
		cuts[0] = a < b ? a : b;
		cuts[1] = a < b ? b : a;
		nc = cuts[0] == cuts[1] ? 1 : 2;
	}
#ifdef FUZZ_REQUEST
	bool request = true;
#else
	bool request = false;
#endif
	static struct h1_out whole, split;
	h1_run(request, method, buf, n, NULL, 0, &whole);
	h1_run(request, method, buf, n, cuts, nc, &split);
	const char *why = "";
	if (!h1_same(&whole, &split, &why))
		abort();
	if (whole.err == 0 && ((size_t)whole.hdr_len > n || whole.body_len + whole.rest > n))
		abort();
	/* A prefix never completes a message the whole input finds broken differently. */
	if (n > 0 && whole.err == 0 && whole.f.body != UR_HTTP1_BODY_CLOSE && whole.rest == 0) {
		static struct h1_out pre;
		h1_run(request, method, buf, n - 1, NULL, 0, &pre);
		if (pre.err != UR_EHTTP_INCOMPLETE)
			abort();
	}
	free(buf);
	return 0;
}
