/* SPDX-License-Identifier: MIT */
/*
 * proto/url.c - http(s) URL parsing, normalisation and reference resolution (RFC 3986).
 *
 * One pass splits the input into its parts, a second writes the normalised text into the
 * caller's struct while checking every byte; dot segments are then removed in place (the output
 * never grows while doing so). Nothing is allocated; resolution composes the target string on the
 * stack and parses it like any other URL, so both paths share one set of rules.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <urio/error.h>
#include <urio/url.h>

/* Character classes of RFC 3986 §2, one table lookup per byte. */
enum {
	C_UNRES = 0x01,  /* ALPHA DIGIT - . _ ~ */
	C_SUB = 0x02,    /* ! $ & ' ( ) * + , ; = */
	C_HOST = 0x04,   /* what a host name may hold: ALPHA DIGIT - . _ */
	C_ENCODE = 0x08, /* printable, not allowed raw, harmless to percent-encode */
	C_HEX = 0x10,
};

static unsigned char cls(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return C_UNRES | C_HOST | ((c | 0x20) <= 'f' ? C_HEX : 0);
	if (c >= '0' && c <= '9')
		return C_UNRES | C_HOST | C_HEX;
	switch (c) {
	case '-':
	case '.':
	case '_':
		return C_UNRES | C_HOST;
	case '~':
		return C_UNRES;
	case '!':
	case '$':
	case '&':
	case '\'':
	case '(':
	case ')':
	case '*':
	case '+':
	case ',':
	case ';':
	case '=':
		return C_SUB;
	case '"':
	case '<':
	case '>':
	case '\\':
	case '^':
	case '`':
	case '{':
	case '|':
	case '}':
	case '[':
	case ']':
		return C_ENCODE;
	default:
		return c >= 0x80 ? C_ENCODE : 0;
	}
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

static const char hexdig[] = "0123456789ABCDEF";

/* The output being built: href with its capacity; every write checks it. */
struct out {
	char *p;
	size_t len;
	int err;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->err)
		return;
	if (n > UR_URL_MAX - 1 - o->len) {
		o->err = UR_EURL_TOOLONG;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void putc1(struct out *o, char c)
{
	put(o, &c, 1);
}

/*
 * Copies a path, query, fragment or userinfo part, normalising percent-encoding and encoding the
 * bytes RFC 3986 does not allow raw. @extra lists the delimiters the part may hold raw besides
 * unreserved and sub-delims (e.g. ":@/" for a path).
 */
static void put_part(struct out *o, const char *s, size_t n, const char *extra)
{
	for (size_t i = 0; i < n && !o->err; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned char k = cls(c);
		if (c == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				o->err = UR_EURL_PERCENT;
				return;
			}
			unsigned char d = (unsigned char)(hi << 4 | lo);
			if (cls(d) & C_UNRES) {
				putc1(o, (char)d);
			} else {
				char e[3] = {'%', hexdig[hi], hexdig[lo]};
				put(o, e, 3);
			}
			i += 2;
		} else if ((k & (C_UNRES | C_SUB)) || (c && strchr(extra, c))) {
			putc1(o, (char)c);
		} else if (k & C_ENCODE) {
			char e[3] = {'%', hexdig[c >> 4], hexdig[c & 15]};
			put(o, e, 3);
		} else {
			/* '#', '?' or '/' where the part may not hold them: encode too. */
			char e[3] = {'%', hexdig[c >> 4], hexdig[c & 15]};
			put(o, e, 3);
		}
	}
}

/*
 * RFC 3986 §5.2.4 on an absolute path p[0..n) (p[0] == '/'), in place. The output is a list of
 * "/segment" runs, so ".." drops the last run and a trailing "." or ".." leaves a "/".
 * Returns the new length (>= 1).
 */
static size_t remove_dots(char *p, size_t n)
{
	size_t in = 0, out = 0;
	while (in < n) {
		size_t s = in + 1, e = s;
		while (e < n && p[e] != '/')
			e++;
		size_t sl = e - s;
		bool last = e == n;
		if (sl == 1 && p[s] == '.') {
			if (last)
				p[out++] = '/';
		} else if (sl == 2 && p[s] == '.' && p[s + 1] == '.') {
			while (out > 0 && p[out - 1] != '/')
				out--;
			if (out > 0)
				out--;
			if (last)
				p[out++] = '/';
		} else {
			memmove(p + out, p + in, e - in);
			out += e - in;
		}
		in = e;
	}
	if (out == 0)
		p[out++] = '/';
	return out;
}

static struct ur_url_span span(size_t off, size_t len)
{
	return (struct ur_url_span){(uint16_t)off, (uint16_t)len};
}

/* Validates and writes an IPv6 literal (without brackets) in its RFC 5952 form. */
static int put_ipv6(struct ur_url *u, struct out *o, const char *s, size_t n)
{
	char tmp[64];
	unsigned char bin[16];
	if (n == 0 || n >= sizeof(tmp))
		return UR_EURL_IPV6;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(cls(c) & C_HEX) && c != ':' && c != '.')
			return UR_EURL_IPV6; /* zone ("%25eth0"), IPvFuture ("v1.x"), junk */
	}
	memcpy(tmp, s, n);
	tmp[n] = 0;
	if (inet_pton(AF_INET6, tmp, bin) != 1)
		return UR_EURL_IPV6;
	if (!inet_ntop(AF_INET6, bin, u->host, sizeof(u->host)))
		return UR_EURL_IPV6;
	putc1(o, '[');
	put(o, u->host, strlen(u->host));
	putc1(o, ']');
	u->flags |= UR_URL_IPV6;
	return 0;
}

static int put_host(struct ur_url *u, struct out *o, const char *s, size_t n)
{
	if (n && s[0] == '[') {
		if (s[n - 1] != ']')
			return UR_EURL_IPV6;
		return put_ipv6(u, o, s + 1, n - 2);
	}
	if (n == 0)
		return UR_EURL_HOST;
	if (n >= UR_URL_HOST_MAX)
		return UR_EURL_TOOLONG;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(cls(c) & C_HOST))
			return c == '[' || c == ']' ? UR_EURL_IPV6 : UR_EURL_HOST;
		u->host[i] = (char)lower(c);
	}
	u->host[n] = 0;
	if (strspn(u->host, ".") == n)
		return UR_EURL_HOST; /* "." or ".." is no name */
	put(o, u->host, n);
	return 0;
}

/* The port after ':' (may be empty: the default). Returns the port, or UR_EURL_PORT. */
static int parse_port(const char *s, size_t n, int dflt)
{
	if (n == 0)
		return dflt;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return UR_EURL_PORT;
		v = v * 10 + (unsigned)(s[i] - '0');
		if (v > 65535)
			return UR_EURL_PORT;
	}
	return v == 0 ? UR_EURL_PORT : (int)v;
}

/*
 * Whole-input checks first, so a control byte anywhere wins over any syntax complaint. Eight bytes
 * at a time while no byte is below 0x21 or equal to 0x7f (exact tests for a word, "Bit Twiddling
 * Hacks", hasless), then byte by byte from the first word that has one, to report the first.
 */
static int check_bytes(const char *s, size_t len)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t x, del;
		memcpy(&x, s + i, 8);
		del = x ^ (0x7f * ones);
		if (((x - 0x21 * ones) & ~x & highs) | ((del - ones) & ~del & highs))
			break;
	}
	for (; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return UR_EURL_CTRL;
		if (c == ' ')
			return UR_EURL_SPACE;
	}
	return 0;
}

/* Finds the end of the scheme ("http:") in s, or returns 0 when there is none (RFC 3986 §3.1). */
static size_t scheme_len(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ':')
			return i;
		bool alpha = (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
		if (!(alpha ||
		      (i > 0 && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))))
			return 0;
	}
	return 0;
}

static int write_authority(struct ur_url *u, struct out *o, const char *a, size_t an)
{
	/* The last '@' ends the userinfo, as browsers and curl read "http://a@b@c/". */
	size_t at = an;
	for (size_t i = an; i-- > 0;)
		if (a[i] == '@') {
			at = i;
			break;
		}
	const char *h = a;
	size_t hn = an;
	if (at < an) {
		u->flags |= UR_URL_USERINFO;
		const char *colon = memchr(a, ':', at);
		size_t un = colon ? (size_t)(colon - a) : at;
		size_t off = o->len;
		put_part(o, a, un, "");
		u->user = span(off, o->len - off);
		if (colon) {
			u->flags |= UR_URL_PASSWORD;
			putc1(o, ':');
			off = o->len;
			put_part(o, colon + 1, at - un - 1, ":");
			u->password = span(off, o->len - off);
		}
		putc1(o, '@');
		if (o->err)
			return o->err;
		h = a + at + 1;
		hn = an - at - 1;
	}
	/* host [":" port]; an IPv6 literal's colons are inside its brackets. */
	size_t hostn = hn;
	const char *port = NULL;
	size_t portn = 0;
	const char *close = hn && h[0] == '[' ? memchr(h, ']', hn) : NULL;
	const char *colon = NULL;
	if (close) {
		if ((size_t)(close - h) + 1 < hn) {
			if (close[1] != ':')
				return UR_EURL_IPV6;
			colon = close + 1;
		}
	} else {
		colon = memchr(h, ':', hn);
	}
	if (colon) {
		hostn = (size_t)(colon - h);
		port = colon + 1;
		portn = hn - hostn - 1;
	}
	size_t aoff = o->len;
	int ret = put_host(u, o, h, hostn);
	if (ret < 0)
		return ret;
	int dflt = u->scheme == UR_URL_HTTPS ? 443 : 80;
	int p = parse_port(port, portn, dflt);
	if (p < 0)
		return p;
	u->port = (uint16_t)p;
	if (p != dflt) {
		char d[8];
		size_t dn = 0;
		for (int v = p; v; v /= 10)
			d[dn++] = (char)('0' + v % 10);
		putc1(o, ':');
		while (dn)
			putc1(o, d[--dn]);
		u->flags |= UR_URL_PORT_GIVEN;
	}
	u->authority = span(aoff, o->len - aoff);
	return o->err;
}

int ur_url_parse(struct ur_url *u, const char *s, size_t len)
{
	int ret = check_bytes(s, len);
	if (ret < 0)
		return ret;
	memset(u, 0, offsetof(struct ur_url, host));
	u->host[0] = 0;
	struct out o = {u->href, 0, 0};

	size_t sl = scheme_len(s, len);
	if (sl == 4 && !strncasecmp(s, "http", 4))
		u->scheme = UR_URL_HTTP;
	else if (sl == 5 && !strncasecmp(s, "https", 5))
		u->scheme = UR_URL_HTTPS;
	else
		return UR_EURL_SCHEME;
	if (len < sl + 3 || s[sl + 1] != '/' || s[sl + 2] != '/')
		return UR_EURL_SCHEME;
	put(&o, u->scheme == UR_URL_HTTPS ? "https://" : "http://", sl + 3);

	/* Split: authority ends at the first '/', '?' or '#'; path at '?' or '#'; query at '#'. */
	size_t a = sl + 3, e = a;
	while (e < len && s[e] != '/' && s[e] != '?' && s[e] != '#')
		e++;
	ret = write_authority(u, &o, s + a, e - a);
	if (ret < 0)
		return ret;

	size_t p = e;
	while (e < len && s[e] != '?' && s[e] != '#')
		e++;
	size_t poff = o.len;
	putc1(&o, '/');
	if (e > p)
		put_part(&o, s + p + 1, e - p - 1, ":@/");
	if (o.err)
		return o.err;
	o.len = poff + remove_dots(u->href + poff, o.len - poff);
	u->path = span(poff, o.len - poff);

	if (e < len && s[e] == '?') {
		size_t q = ++e;
		while (e < len && s[e] != '#')
			e++;
		u->flags |= UR_URL_QUERY;
		putc1(&o, '?');
		size_t qoff = o.len;
		put_part(&o, s + q, e - q, ":@/?");
		u->query = span(qoff, o.len - qoff);
	}
	u->target = span(poff, o.len - poff);
	if (e < len) { /* '#' */
		u->flags |= UR_URL_FRAGMENT;
		putc1(&o, '#');
		size_t foff = o.len;
		put_part(&o, s + e + 1, len - e - 1, ":@/?");
		u->fragment = span(foff, o.len - foff);
	}
	if (o.err)
		return o.err;
	u->href[o.len] = 0;
	u->href_len = (uint16_t)o.len;
	return 0;
}

/* The generic split of RFC 3986 Appendix B, for a reference of any scheme. */
struct ref {
	const char *scheme, *auth, *path, *query, *frag;
	size_t scheme_n, auth_n, path_n, query_n, frag_n;
	bool has_scheme, has_auth, has_query, has_frag;
};

static void split_ref(const char *s, size_t n, struct ref *r)
{
	memset(r, 0, sizeof(*r));
	size_t i = 0;
	size_t sl = scheme_len(s, n);
	if (sl > 0) {
		r->has_scheme = true;
		r->scheme = s;
		r->scheme_n = sl;
		i = sl + 1;
	}
	if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		r->has_auth = true;
		i += 2;
		r->auth = s + i;
		while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
			i++;
		r->auth_n = (size_t)(s + i - r->auth);
	}
	r->path = s + i;
	while (i < n && s[i] != '?' && s[i] != '#')
		i++;
	r->path_n = (size_t)(s + i - r->path);
	if (i < n && s[i] == '?') {
		r->has_query = true;
		r->query = s + ++i;
		while (i < n && s[i] != '#')
			i++;
		r->query_n = (size_t)(s + i - r->query);
	}
	if (i < n) {
		r->has_frag = true;
		r->frag = s + i + 1;
		r->frag_n = n - i - 1;
	}
}

int ur_url_resolve(struct ur_url *out, const struct ur_url *base, const char *ref, size_t len)
{
	if (out == base)
		return -EINVAL;
	int ret = check_bytes(ref, len);
	if (ret < 0)
		return ret;
	struct ref r;
	split_ref(ref, len, &r);
	if (r.has_scheme)
		return ur_url_parse(out, ref, len);

	char buf[UR_URL_MAX];
	struct out o = {buf, 0, 0};
	const char *b = base->href;
	/* scheme "://" and, unless the reference has its own, the base's userinfo and authority. */
	size_t pre = base->scheme == UR_URL_HTTPS ? 8 : 7;
	if (r.has_auth) {
		put(&o, b, pre);
		put(&o, r.auth, r.auth_n);
		put(&o, r.path, r.path_n);
		if (r.has_query) {
			putc1(&o, '?');
			put(&o, r.query, r.query_n);
		}
	} else {
		put(&o, b, base->path.off); /* everything before the path */
		if (r.path_n == 0) {
			put(&o, b + base->path.off, base->path.len);
			if (r.has_query) {
				putc1(&o, '?');
				put(&o, r.query, r.query_n);
			} else if (base->flags & UR_URL_QUERY) {
				putc1(&o, '?');
				put(&o, b + base->query.off, base->query.len);
			}
		} else {
			if (r.path[0] != '/') {
				/* merge (§5.2.3): the base path up to its last '/'; it always has
				 * one. */
				const char *bp = b + base->path.off;
				size_t bn = base->path.len;
				while (bn > 0 && bp[bn - 1] != '/')
					bn--;
				put(&o, bp, bn);
			}
			put(&o, r.path, r.path_n);
			if (r.has_query) {
				putc1(&o, '?');
				put(&o, r.query, r.query_n);
			}
		}
	}
	if (r.has_frag) {
		putc1(&o, '#');
		put(&o, r.frag, r.frag_n);
	}
	if (o.err)
		return o.err;
	return ur_url_parse(out, buf, o.len);
}

bool ur_url_same_origin(const struct ur_url *a, const struct ur_url *b)
{
	return a->scheme == b->scheme && a->port == b->port && !strcmp(a->host, b->host);
}

int ur_url_origin(const struct ur_url *u, char *buf, size_t cap)
{
	const char *sch = u->scheme == UR_URL_HTTPS ? "https://" : "http://";
	const char *lb = (u->flags & UR_URL_IPV6) ? "[" : "";
	const char *rb = (u->flags & UR_URL_IPV6) ? "]" : "";
	char port[8];
	size_t pn = 0;
	char d[8];
	size_t dn = 0;
	for (unsigned v = u->port; v; v /= 10)
		d[dn++] = (char)('0' + v % 10);
	while (dn)
		port[pn++] = d[--dn];
	port[pn] = 0;
	size_t need = strlen(sch) + strlen(lb) + strlen(u->host) + strlen(rb) + 1 + pn;
	if (need + 1 > cap) {
		if (cap)
			buf[0] = 0;
		return -ENOSPC;
	}
	size_t n = 0;
	const char *parts[] = {sch, lb, u->host, rb, ":", port};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t l = strlen(parts[i]);
		memcpy(buf + n, parts[i], l);
		n += l;
	}
	buf[n] = 0;
	return (int)n;
}
