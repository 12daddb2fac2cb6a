/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_url.c - libFuzzer target: ur_url_parse and ur_url_resolve on arbitrary bytes.
 * Checks what every caller relies on: a parsed URL's href is normalised (parsing it again gives
 * it back), holds no byte a request line could be split on, and every span lies inside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <urio/error.h>
#include <urio/url.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct ur_url *u)
{
	if (u->href_len != strlen(u->href) || u->href_len >= UR_URL_MAX)
		abort();
	for (size_t i = 0; i < u->href_len; i++) {
		unsigned char c = (unsigned char)u->href[i];
		if (c <= 0x20 || c >= 0x7f)
			abort();
	}
	const struct ur_url_span *s[] = {&u->user, &u->password, &u->authority, &u->target,
	                                 &u->path, &u->query,    &u->fragment};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if ((size_t)s[i]->off + s[i]->len > u->href_len)
			abort();
	if (u->path.len == 0 || u->href[u->path.off] != '/' || u->port == 0 || !u->host[0])
		abort();
	static struct ur_url again;
	if (ur_url_parse(&again, u->href, u->href_len) != 0 || strcmp(again.href, u->href) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ur_url u, base, out;
	const char *s = (const char *)data;
	if (ur_url_parse(&u, s, size) == 0)
		check(&u);
	/* As a reference against a base with every part, and against itself when it parsed. */
	static const char b[] = "https://user:pw@h.example:8443/a/b/c;p?q=1#f";
	if (ur_url_parse(&base, b, sizeof(b) - 1) != 0)
		abort();
	if (ur_url_resolve(&out, &base, s, size) == 0)
		check(&out);
	const char *nl = memchr(s, '\n', size);
	if (nl && ur_url_parse(&base, s, (size_t)(nl - s)) == 0) {
		size_t off = (size_t)(nl - s) + 1;
		if (ur_url_resolve(&out, &base, s + off, size - off) == 0)
			check(&out);
	}
	return 0;
}
