/* SPDX-License-Identifier: MIT */
/*
 * tests/proto/test_url.c - URL parsing, normalisation and RFC 3986 §5.4 reference resolution.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <urio.h>

TestSuite(url, .timeout = 60);

struct pcase {
	const char *in;
	size_t len; /* 0: strlen(in) */
	int err;
	const char *href;
};

static const struct pcase parse_cases[] = {
    {"HTTP://Example.COM/a", 0, 0, "http://example.com/a"},
    {"http://example.com", 0, 0, "http://example.com/"},
    {"http://example.com?q", 0, 0, "http://example.com/?q"},
    {"http://example.com#f", 0, 0, "http://example.com/#f"},
    {"http://example.com:80/", 0, 0, "http://example.com/"},
    {"http://example.com:0080/", 0, 0, "http://example.com/"},
    {"https://example.com:443", 0, 0, "https://example.com/"},
    {"https://example.com:80/", 0, 0, "https://example.com:80/"},
    {"http://example.com:/x", 0, 0, "http://example.com/x"},
    {"http://example.com:65535/", 0, 0, "http://example.com:65535/"},
    {"https://[2001:DB8::1]:8443/p", 0, 0, "https://[2001:db8::1]:8443/p"},
    {"http://[::FFFF:1.2.3.4]/", 0, 0, "http://[::ffff:1.2.3.4]/"},
    {"http://[0:0:0:0:0:0:0:1]", 0, 0, "http://[::1]/"},
    {"http://127.0.0.1:8080", 0, 0, "http://127.0.0.1:8080/"},
    {"http://a_b-c.d./", 0, 0, "http://a_b-c.d./"},
    {"http://u:p%41@h/", 0, 0, "http://u:pA@h/"},
    {"http://@h/", 0, 0, "http://@h/"},
    {"http://a@b@c/", 0, 0, "http://a%40b@c/"},
    {"http://a/%7euser/%2fx/%2f", 0, 0, "http://a/~user/%2Fx/%2F"},
    {"http://a/b/../c/./d", 0, 0, "http://a/c/d"},
    {"http://a/b/c/..", 0, 0, "http://a/b/"},
    {"http://a/..", 0, 0, "http://a/"},
    {"http://a/%2E%2E/x", 0, 0, "http://a/x"},
    {"http://a/\xc3\xa9", 0, 0, "http://a/%C3%A9"},
    {"http://a/{x}|^`\\\"<>[]", 0, 0, "http://a/%7Bx%7D%7C%5E%60%5C%22%3C%3E%5B%5D"},
    {"http://a/p?x=/..&y=?:@#f/../?", 0, 0, "http://a/p?x=/..&y=?:@#f/../?"},
    {"http://a/b#c#d", 0, 0, "http://a/b#c%23d"},
    {"http://a/%0d%0a", 0, 0, "http://a/%0D%0A"},
    {"http://a/;p=1,2!$&'()*+", 0, 0, "http://a/;p=1,2!$&'()*+"},
    /* refused */
    {"", 0, UR_EURL_SCHEME, NULL},
    {"ftp://a/", 0, UR_EURL_SCHEME, NULL},
    {"httpx://a/", 0, UR_EURL_SCHEME, NULL},
    {"a/b", 0, UR_EURL_SCHEME, NULL},
    {"//a/b", 0, UR_EURL_SCHEME, NULL},
    {"http:/a", 0, UR_EURL_SCHEME, NULL},
    {"http:a", 0, UR_EURL_SCHEME, NULL},
    {"http://a/\r\nHost: evil", 0, UR_EURL_CTRL, NULL},
    {"http://a/\n", 0, UR_EURL_CTRL, NULL},
    {"http://a/\0x", 11, UR_EURL_CTRL, NULL},
    {"http://a/\x7f", 0, UR_EURL_CTRL, NULL},
    {"http://a\t/", 0, UR_EURL_CTRL, NULL},
    {"http://a/\x1b[0m", 0, UR_EURL_CTRL, NULL},
    {"http://a/?q=1 2", 0, UR_EURL_SPACE, NULL},
    {" http://a/", 0, UR_EURL_SPACE, NULL},
    {"http://a b/", 0, UR_EURL_SPACE, NULL},
    {"http:///a", 0, UR_EURL_HOST, NULL},
    {"http://u@/a", 0, UR_EURL_HOST, NULL},
    {"http://:80/", 0, UR_EURL_HOST, NULL},
    {"http://ex%41mple.com/", 0, UR_EURL_HOST, NULL},
    {"http://a%0d%0aX/", 0, UR_EURL_HOST, NULL},
    {"http://exa!mple/", 0, UR_EURL_HOST, NULL},
    {"http://\xe4\xbe\x8b.jp/", 0, UR_EURL_HOST, NULL},
    {"http://./", 0, UR_EURL_HOST, NULL},
    {"http://a\\b/", 0, UR_EURL_HOST, NULL},
    {"http://a:0/", 0, UR_EURL_PORT, NULL},
    {"http://a:65536/", 0, UR_EURL_PORT, NULL},
    {"http://a:99999999999999999999/", 0, UR_EURL_PORT, NULL},
    {"http://a:8x/", 0, UR_EURL_PORT, NULL},
    {"http://a:-1/", 0, UR_EURL_PORT, NULL},
    {"http://a:1:2/", 0, UR_EURL_PORT, NULL},
    {"http://[::1/", 0, UR_EURL_IPV6, NULL},
    {"http://[::1]x/", 0, UR_EURL_IPV6, NULL},
    {"http://[fe80::1%25eth0]/", 0, UR_EURL_IPV6, NULL},
    {"http://[v1.x]/", 0, UR_EURL_IPV6, NULL},
    {"http://[1:2]/", 0, UR_EURL_IPV6, NULL},
    {"http://[]/", 0, UR_EURL_IPV6, NULL},
    {"http://a]/", 0, UR_EURL_IPV6, NULL},
    {"http://a/%", 0, UR_EURL_PERCENT, NULL},
    {"http://a/%4", 0, UR_EURL_PERCENT, NULL},
    {"http://a/%4g", 0, UR_EURL_PERCENT, NULL},
    {"http://a/?q=%zz", 0, UR_EURL_PERCENT, NULL},
    {"http://a/#%", 0, UR_EURL_PERCENT, NULL},
    {"http://u%:p@a/", 0, UR_EURL_PERCENT, NULL},
};

Test(url, parse_table)
{
	static struct ur_url u;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct pcase *c = &parse_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		int ret = ur_url_parse(&u, c->in, len);
		cr_assert_eq(ret, c->err, "%zu \"%s\": %s, want %s", i, c->in,
		             ur_strerror_name(ret), ur_strerror_name(c->err));
		if (c->err)
			continue;
		cr_assert_str_eq(u.href, c->href, "%zu \"%s\"", i, c->in);
		cr_assert_eq(u.href_len, strlen(c->href));
		/* Normalising is idempotent. */
		static struct ur_url again;
		cr_assert_eq(ur_url_parse(&again, u.href, u.href_len), 0, "%s", u.href);
		cr_assert_str_eq(again.href, u.href);
	}
}

static void span_is(const struct ur_url *u, struct ur_url_span s, const char *want)
{
	cr_assert_eq(s.len, strlen(want), "span \"%.*s\" vs \"%s\"", s.len, ur_url_part(u, s),
	             want);
	cr_assert_arr_eq(ur_url_part(u, s), want, s.len);
}

Test(url, parts_for_the_client)
{
	static struct ur_url u;
	const char *s = "HTTPS://User:Pw@Example.COM:8443/a/./b?q=1#frag";
	cr_assert_eq(ur_url_parse(&u, s, strlen(s)), 0);
	cr_assert_str_eq(u.href, "https://User:Pw@example.com:8443/a/b?q=1#frag");
	cr_assert_eq(u.scheme, UR_URL_HTTPS);
	cr_assert_eq(u.port, 8443);
	cr_assert_str_eq(u.host, "example.com");
	span_is(&u, u.user, "User");
	span_is(&u, u.password, "Pw");
	span_is(&u, u.authority, "example.com:8443");
	span_is(&u, u.target, "/a/b?q=1");
	span_is(&u, u.path, "/a/b");
	span_is(&u, u.query, "q=1");
	span_is(&u, u.fragment, "frag");
	cr_assert_eq(u.flags, UR_URL_USERINFO | UR_URL_PASSWORD | UR_URL_QUERY | UR_URL_FRAGMENT |
	                          UR_URL_PORT_GIVEN);

	s = "http://[::1]/";
	cr_assert_eq(ur_url_parse(&u, s, strlen(s)), 0);
	cr_assert_str_eq(u.host, "::1", "no brackets: ready for getaddrinfo");
	span_is(&u, u.authority, "[::1]");
	span_is(&u, u.target, "/");
	cr_assert_eq(u.port, 80);
	cr_assert_eq(u.flags, UR_URL_IPV6);

	s = "http://h?";
	cr_assert_eq(ur_url_parse(&u, s, strlen(s)), 0);
	span_is(&u, u.target, "/?");
	cr_assert_eq(u.query.len, 0);
	cr_assert_eq(u.flags, UR_URL_QUERY);
}

Test(url, origin)
{
	static struct ur_url a, b;
	char buf[64];
	cr_assert_eq(ur_url_parse(&a, "https://[::1]/x", 15), 0);
	cr_assert_eq(ur_url_origin(&a, buf, sizeof(buf)), 17);
	cr_assert_str_eq(buf, "https://[::1]:443");
	cr_assert_eq(ur_url_origin(&a, buf, 17), -ENOSPC);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(ur_url_origin(&a, buf, 18), 17);

	cr_assert_eq(ur_url_parse(&a, "http://a/", 9), 0);
	cr_assert_eq(ur_url_parse(&b, "HTTP://u@A:80/x?y", 17), 0);
	cr_assert(ur_url_same_origin(&a, &b));
	cr_assert_eq(ur_url_parse(&b, "https://a:80/", 13), 0);
	cr_assert(!ur_url_same_origin(&a, &b), "scheme differs");
	cr_assert_eq(ur_url_parse(&b, "http://a:81/", 12), 0);
	cr_assert(!ur_url_same_origin(&a, &b), "port differs");
	cr_assert_eq(ur_url_parse(&b, "http://b/", 9), 0);
	cr_assert(!ur_url_same_origin(&a, &b), "host differs");
}

/*
 * Control bytes and spaces anywhere, checked eight bytes at a time: every byte value at every
 * place of URLs of 10 to 33 bytes, and of two offenders the first is the one reported.
 */
Test(url, control_and_space_every_place)
{
	char s[40];
	struct ur_url u;
	for (size_t len = 10; len <= 33; len++) {
		memcpy(s, "http://h/", 9);
		memset(s + 9, 'a', len - 9);
		cr_assert_eq(ur_url_parse(&u, s, len), 0);
		for (size_t at = 0; at < len; at++) {
			char keep = s[at];
			for (int b = 0; b < 256; b++) {
				s[at] = (char)b;
				int r = ur_url_parse(&u, s, len);
				int want = b < 0x20 || b == 0x7f ? UR_EURL_CTRL
				           : b == ' '            ? UR_EURL_SPACE
				                                 : 1;
				if (want < 0)
					cr_assert_eq(r, want, "byte 0x%02x at %zu of %zu: %d", b,
					             at, len, r);
				else
					cr_assert(r != UR_EURL_CTRL && r != UR_EURL_SPACE,
					          "byte 0x%02x at %zu of %zu: %d", b, at, len, r);
			}
			s[at] = keep;
		}
		for (size_t at = 9; at + 1 < len; at++) {
			s[at] = ' ';
			s[len - 1] = '\x01';
			cr_assert_eq(ur_url_parse(&u, s, len), UR_EURL_SPACE);
			s[at] = '\x01';
			s[len - 1] = ' ';
			cr_assert_eq(ur_url_parse(&u, s, len), UR_EURL_CTRL);
			s[at] = s[len - 1] = 'a';
		}
	}
}

Test(url, length_limits)
{
	static char s[UR_URL_MAX + 16];
	static struct ur_url u;
	memcpy(s, "http://a/", 9);
	memset(s + 9, 'x', sizeof(s) - 9);
	cr_assert_eq(ur_url_parse(&u, s, UR_URL_MAX - 1), 0);
	cr_assert_eq(u.href_len, UR_URL_MAX - 1);
	cr_assert_eq(ur_url_parse(&u, s, UR_URL_MAX), UR_EURL_TOOLONG);
	/* Encoding triples a byte: the limit is on the result. */
	memset(s + 9, 0xff, 3000);
	cr_assert_eq(ur_url_parse(&u, s, 9 + 3000), UR_EURL_TOOLONG);
	cr_assert_eq(ur_url_parse(&u, s, 9 + 2000), 0);

	memcpy(s, "http://", 7);
	memset(s + 7, 'h', 300);
	cr_assert_eq(ur_url_parse(&u, s, 7 + UR_URL_HOST_MAX - 1), 0);
	cr_assert_eq(strlen(u.host), UR_URL_HOST_MAX - 1);
	cr_assert_eq(ur_url_parse(&u, s, 7 + UR_URL_HOST_MAX), UR_EURL_TOOLONG);
}

/* RFC 3986 §5.4: base "http://a/b/c/d;p?q". The empty path of "//g" normalises to "/". */
static const struct {
	const char *ref;
	const char *want; /* NULL: rejected */
} rfc_cases[] = {
    /* 5.4.1 normal */
    {"g:h", NULL},
    {"g", "http://a/b/c/g"},
    {"./g", "http://a/b/c/g"},
    {"g/", "http://a/b/c/g/"},
    {"/g", "http://a/g"},
    {"//g", "http://g/"},
    {"?y", "http://a/b/c/d;p?y"},
    {"g?y", "http://a/b/c/g?y"},
    {"#s", "http://a/b/c/d;p?q#s"},
    {"g#s", "http://a/b/c/g#s"},
    {"g?y#s", "http://a/b/c/g?y#s"},
    {";x", "http://a/b/c/;x"},
    {"g;x", "http://a/b/c/g;x"},
    {"g;x?y#s", "http://a/b/c/g;x?y#s"},
    {"", "http://a/b/c/d;p?q"},
    {".", "http://a/b/c/"},
    {"./", "http://a/b/c/"},
    {"..", "http://a/b/"},
    {"../", "http://a/b/"},
    {"../g", "http://a/b/g"},
    {"../..", "http://a/"},
    {"../../", "http://a/"},
    {"../../g", "http://a/g"},
    /* 5.4.2 abnormal */
    {"../../../g", "http://a/g"},
    {"../../../../g", "http://a/g"},
    {"/./g", "http://a/g"},
    {"/../g", "http://a/g"},
    {"g.", "http://a/b/c/g."},
    {".g", "http://a/b/c/.g"},
    {"g..", "http://a/b/c/g.."},
    {"..g", "http://a/b/c/..g"},
    {"./../g", "http://a/b/g"},
    {"./g/.", "http://a/b/c/g/"},
    {"g/./h", "http://a/b/c/g/h"},
    {"g/../h", "http://a/b/c/h"},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
    {"g;x=1/../y", "http://a/b/c/y"},
    {"g?y/./x", "http://a/b/c/g?y/./x"},
    {"g?y/../x", "http://a/b/c/g?y/../x"},
    {"g#s/./x", "http://a/b/c/g#s/./x"},
    {"g#s/../x", "http://a/b/c/g#s/../x"},
    {"http:g", NULL}, /* strict parsers: absolute, and without "//" not an http URL */
};

Test(url, resolve_rfc3986_examples)
{
	static struct ur_url base, out;
	cr_assert_eq(ur_url_parse(&base, "http://a/b/c/d;p?q", 18), 0);
	for (size_t i = 0; i < sizeof(rfc_cases) / sizeof(rfc_cases[0]); i++) {
		int ret = ur_url_resolve(&out, &base, rfc_cases[i].ref, strlen(rfc_cases[i].ref));
		if (!rfc_cases[i].want) {
			cr_assert_eq(ret, UR_EURL_SCHEME, "\"%s\": %s", rfc_cases[i].ref,
			             ur_strerror_name(ret));
			continue;
		}
		cr_assert_eq(ret, 0, "\"%s\": %s", rfc_cases[i].ref, ur_strerror_name(ret));
		cr_assert_str_eq(out.href, rfc_cases[i].want, "\"%s\"", rfc_cases[i].ref);
	}
}

Test(url, resolve_redirects)
{
	static struct ur_url base, out;
	const char *b = "https://user:pw@h.example:8443/dir/page?x=1#top";
	cr_assert_eq(ur_url_parse(&base, b, strlen(b)), 0);
	struct {
		const char *ref;
		int err;
		const char *want;
	} c[] = {
	    {"other", 0, "https://user:pw@h.example:8443/dir/other"},
	    {"//elsewhere:81/x", 0, "https://elsewhere:81/x"},
	    {"//ELSEWHERE:443", 0, "https://elsewhere/"},
	    {"HTTP://Plain/", 0, "http://plain/"},
	    {"/abs?q=%7e", 0, "https://user:pw@h.example:8443/abs?q=~"},
	    {"?only", 0, "https://user:pw@h.example:8443/dir/page?only"},
	    {"../../../..", 0, "https://user:pw@h.example:8443/"},
	    {"ftp://x/", UR_EURL_SCHEME, NULL},
	    {"javascript:alert(1)", UR_EURL_SCHEME, NULL},
	    {"/a\r\nSet-Cookie: x", UR_EURL_CTRL, NULL},
	    {"/a b", UR_EURL_SPACE, NULL},
	    {"/%zz", UR_EURL_PERCENT, NULL},
	    {"//", UR_EURL_HOST, NULL},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int ret = ur_url_resolve(&out, &base, c[i].ref, strlen(c[i].ref));
		cr_assert_eq(ret, c[i].err, "\"%s\": %s", c[i].ref, ur_strerror_name(ret));
		if (!ret)
			cr_assert_str_eq(out.href, c[i].want, "\"%s\"", c[i].ref);
	}
	cr_assert_eq(ur_url_resolve(&base, &base, "x", 1), -EINVAL);
}

Test(url, errors_have_names)
{
	for (int c = UR_EURL_SCHEME; c >= UR_EURL_TOOLONG; c--) {
		cr_assert_str_neq(ur_strerror_name(c), "UNKNOWN", "code %d", c);
		cr_assert_str_neq(ur_strerror(c), "unknown error", "code %d", c);
	}
}
