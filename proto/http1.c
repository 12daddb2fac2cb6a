/* SPDX-License-Identifier: MIT */
/*
 * proto/http1.c - HTTP/1.1 responses, requests and chunked bodies (RFC 9112), zero-copy.
 *
 * The header section is parsed line by line. A call resumes at the first line it has not yet
 * checked (the parser keeps that offset, never a pointer), so bytes dripping in cost O(line) per
 * call, not O(section). A section that arrives in one call is checked and recorded in one walk;
 * one that arrived in pieces is walked once more from the start when its empty line arrives, to
 * fill the caller's array with pointers into the buffer as it is now (the buffer may have moved
 * between calls). Limits are decided as if byte by byte while looking for a line's end, so the
 * verdict on any input is the same however it is split across calls.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <urio/error.h>
#include <urio/http1.h>

/*
 * Byte classes, one table lookup per byte: every byte of every header section is classified,
 * so this is on the path of each response.
 */
enum {
	C_TCHAR = 1, /* RFC 9110 §5.6.2 tchar */
	C_VCHAR = 2, /* field-vchar / SP / HTAB (RFC 9110 §5.5): anything but controls and DEL */
};

#define TCHAR_OR_VCHAR(c)                                                                          \
	((((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') ||                              \
	  ((c) >= '0' && (c) <= '9') || (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' ||    \
	  (c) == '&' || (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' ||     \
	  (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~')                      \
	     ? C_TCHAR                                                                             \
	     : 0) |                                                                                \
	    (((c) == '\t' || ((c) >= 0x20 && (c) != 0x7f)) ? C_VCHAR : 0)
#define CLS4(c)                                                                                    \
	TCHAR_OR_VCHAR(c), TCHAR_OR_VCHAR((c) + 1), TCHAR_OR_VCHAR((c) + 2), TCHAR_OR_VCHAR((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)

static const unsigned char cls[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

static bool is_tchar(unsigned char c)
{
	return cls[c] & C_TCHAR;
}

static bool is_vchar_ws(unsigned char c)
{
	return cls[c] & C_VCHAR;
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* a[0..an) and b[0..bn) equal but for ASCII case. */
static bool ieqn(const char *a, size_t an, const char *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x != y && lower(x) != lower(y)) /* names mostly match byte for byte */
			return false;
	}
	return true;
}

static bool ieq(const char *a, size_t an, const char *b)
{
	return ieqn(a, an, b, strlen(b));
}

static uint32_t or_default(uint32_t v, uint32_t d)
{
	return v ? v : d;
}

void ur_http1_parser_init(struct ur_http1_parser *p, const struct ur_http1_limits *lim)
{
	struct ur_http1_limits l = {0};
	if (lim)
		l = *lim;
	memset(p, 0, sizeof(*p));
	p->lim.max_line = or_default(l.max_line, UR_HTTP1_MAX_LINE);
	p->lim.max_field = or_default(l.max_field, UR_HTTP1_MAX_FIELD);
	p->lim.max_fields = or_default(l.max_fields, UR_HTTP1_MAX_FIELDS);
	p->lim.max_header_bytes = or_default(l.max_header_bytes, UR_HTTP1_MAX_HEADER_BYTES);
	p->lim.max_chunk_line = or_default(l.max_chunk_line, UR_HTTP1_MAX_CHUNK_LINE);
	p->lim.max_trailer_bytes = or_default(l.max_trailer_bytes, UR_HTTP1_MAX_TRAILER_BYTES);
	/* The section's length is returned as an int, skipped empty lines included. */
	if (p->lim.max_header_bytes > (1u << 30))
		p->lim.max_header_bytes = 1u << 30;
	if (p->lim.max_line > (1u << 30))
		p->lim.max_line = 1u << 30;
}

/*
 * Finds the end of the line starting at @i: on success returns 0 with the line's content being
 * buf[i..*end) and the next line starting at *end + 2. @limit bounds the content, @skip is where
 * the header section started (for the total limit). Returns UR_EHTTP_INCOMPLETE at the end of
 * the bytes, or an error, deciding byte by byte so that splitting changes nothing.
 */
static int line_end(const struct ur_http1_parser *p, const char *buf, size_t len, size_t i,
                    size_t limit, int limit_err, size_t *end)
{
	/*
	 * The verdict byte by byte, in this order at each position j: past the section's limit,
	 * then a bare LF, then CR, then past the line's limit. Both limits are positions, so the
	 * loop only looks for CR or LF below the nearer one and the stop point says which applies.
	 */
	size_t big = p->skip + p->lim.max_header_bytes; /* j >= big: the section is too big */
	size_t over = i + limit;                        /* j >= over, not CR/LF: line too long */
	size_t stop = len;
	if (big < stop)
		stop = big;
	if (over < stop)
		stop = over + 1;
	/* Lines are tens of bytes: memchr() beats a loop testing each byte twice. */
	const char *cr = i < stop ? memchr(buf + i, '\r', stop - i) : NULL;
	size_t j = cr ? (size_t)(cr - buf) : stop;
	if (cr && j + 1 < len && j + 1 < big && buf[j + 1] == '\n') {
		/*
		 * A whole line: whether a bare LF came before its CR is left to the check of its
		 * content, which every LF fails (scan() then reports it, as the order above says).
		 */
		*end = j;
		return 0;
	}
	const char *lf = j > i ? memchr(buf + i, '\n', j - i) : NULL;
	if (lf)
		j = (size_t)(lf - buf);
	if (j < stop) {
		if (buf[j] == '\n')
			return UR_EHTTP_NEWLINE;
		if (j + 1 == len)
			return UR_EHTTP_INCOMPLETE;
		if (j + 1 >= big)
			return UR_EHTTP_HEADER_TOO_BIG;
		if (buf[j + 1] != '\n')
			return UR_EHTTP_NEWLINE;
		*end = j;
		return 0;
	}
	if (over < len && over < big)
		return limit_err; /* stop was over + 1: no CR or LF up to and at over */
	if (big < len)
		return UR_EHTTP_HEADER_TOO_BIG; /* stop was big */
	return UR_EHTTP_INCOMPLETE;
}

/* "HTTP/1.x" at s (8 bytes available). Returns the minor version (0 or 1) or an error. */
static int parse_version(const char *s)
{
	if (memcmp(s, "HTTP/", 5) != 0)
		return UR_EHTTP_SYNTAX;
	if (s[5] < '0' || s[5] > '9' || s[6] != '.' || s[7] < '0' || s[7] > '9')
		return UR_EHTTP_SYNTAX;
	if (s[5] != '1')
		return UR_EHTTP_VERSION;
	return s[7] == '0' ? 0 : 1;
}

static int status_line(const char *s, size_t n, struct ur_http1_response *r)
{
	if (n < 8)
		return UR_EHTTP_SYNTAX;
	int minor = parse_version(s);
	if (minor < 0)
		return minor;
	if (n < 12)
		return n > 8 && s[8] == ' ' ? UR_EHTTP_STATUS : UR_EHTTP_SYNTAX;
	if (s[8] != ' ')
		return UR_EHTTP_SYNTAX;
	int status = 0;
	for (int k = 9; k < 12; k++) {
		if (s[k] < '0' || s[k] > '9')
			return UR_EHTTP_STATUS;
		status = status * 10 + (s[k] - '0');
	}
	if (status < 100)
		return UR_EHTTP_STATUS;
	/* "HTTP/1.1 200" with no reason and no space is common enough to accept. */
	if (n > 12 && s[12] != ' ')
		return UR_EHTTP_STATUS;
	size_t rs = n > 12 ? 13 : 12;
	for (size_t k = rs; k < n; k++)
		if (!is_vchar_ws((unsigned char)s[k]))
			return UR_EHTTP_SYNTAX;
	if (r) {
		r->minor_version = minor;
		r->status = status;
		r->reason = s + rs;
		r->reason_len = n - rs;
	}
	return 0;
}

static int request_line(const char *s, size_t n, struct ur_http1_request *r)
{
	size_t m = 0;
	while (m < n && s[m] != ' ') {
		if (!is_tchar((unsigned char)s[m]))
			return UR_EHTTP_METHOD;
		m++;
	}
	if (m == 0 || m == n)
		return UR_EHTTP_METHOD;
	size_t t = m + 1, te = t;
	while (te < n && s[te] != ' ') {
		unsigned char c = (unsigned char)s[te];
		if (c <= 0x20 || c >= 0x7f)
			return UR_EHTTP_TARGET;
		te++;
	}
	if (te == t || te == n)
		return UR_EHTTP_TARGET;
	if (n - te - 1 != 8)
		return UR_EHTTP_SYNTAX;
	int minor = parse_version(s + te + 1);
	if (minor < 0)
		return minor;
	if (r) {
		r->method = s;
		r->method_len = m;
		r->target = s + t;
		r->target_len = te - t;
		r->minor_version = minor;
	}
	return 0;
}

/*
 * Whether s[0..n) is all field-vchar / SP / HTAB. Eight bytes at a time: a word with no byte
 * below 0x20 and none equal to 0x7f passes whole (both tests are exact for a word, see "Bit
 * Twiddling Hacks", hasless); from the first word that fails, byte by byte (a tab is fine).
 */
static bool all_vchar_ws(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t j = 0;
	for (; j + 8 <= n; j += 8) {
		uint64_t x, del;
		memcpy(&x, s + j, 8);
		del = x ^ (0x7f * ones);
		if (((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs))
			break;
	}
	for (; j < n; j++)
		if (!is_vchar_ws((unsigned char)s[j]))
			return false;
	return true;
}

/* One "name: value" line (no CRLF), trimmed of OWS around the value. */
static int field_line(const char *s, size_t n, struct ur_http_header *h)
{
	if (n && is_ows((unsigned char)s[0]))
		return UR_EHTTP_OBSFOLD;
	size_t k = 0;
	while (k < n && is_tchar((unsigned char)s[k]))
		k++;
	if (k == n)
		return UR_EHTTP_SYNTAX; /* all tchar, no ':' */
	if (k == 0 || s[k] != ':')
		return UR_EHTTP_HNAME;
	size_t v = k + 1, ve = n;
	while (v < n && is_ows((unsigned char)s[v]))
		v++;
	while (ve > v && is_ows((unsigned char)s[ve - 1]))
		ve--;
	if (!all_vchar_ws(s + v, ve - v))
		return UR_EHTTP_HVALUE;
	if (h) {
		h->name = s;
		h->name_len = k;
		h->value = s + v;
		h->value_len = ve - v;
	}
	return 0;
}

enum {
	RESPONSE,
	REQUEST
};

struct msg {
	int kind;
	struct ur_http1_response *rs;
	struct ur_http1_request *rq;
	struct ur_http_header *headers;
	size_t max_headers;
};

/*
 * The error for a line that line_end() found whole and that failed: a bare LF in it comes first
 * (line_end() leaves that to the content checks, which every byte of a line goes through).
 */
static int bare_lf(const char *s, size_t n, int err)
{
	return memchr(s, '\n', n) ? UR_EHTTP_NEWLINE : err;
}

/*
 * Checks (and with @fill, records) whole lines from p->scanned on. Returns the section's length
 * when its empty line is reached, UR_EHTTP_INCOMPLETE, or an error.
 */
static int scan(struct ur_http1_parser *p, const char *buf, size_t len, struct msg *m, bool fill)
{
	size_t i = p->scanned;
	size_t max_fields = p->lim.max_fields;
	if (m->max_headers < max_fields)
		max_fields = m->max_headers;
	for (;;) {
		size_t end;
		bool start = !p->started;
		int ret = line_end(p, buf, len, i, start ? p->lim.max_line : p->lim.max_field,
		                   start ? UR_EHTTP_LINE_TOO_LONG : UR_EHTTP_FIELD_TOO_LONG, &end);
		if (ret < 0)
			return ret;
		const char *s = buf + i;
		size_t n = end - i;
		if (start && m->kind == REQUEST && n == 0) {
			/* An empty line before the request line (RFC 9112 §2.2), within max_line.
			 */
			if (end + 2 > p->lim.max_line)
				return UR_EHTTP_LINE_TOO_LONG;
			i = p->scanned = p->skip = end + 2;
			continue;
		}
		if (start) {
			ret = m->kind == REQUEST ? request_line(s, n, fill ? m->rq : NULL)
			                         : status_line(s, n, fill ? m->rs : NULL);
			if (ret < 0)
				return bare_lf(s, n, ret);
			p->started = true;
		} else if (n == 0) {
			return (int)(end + 2 - p->skip);
		} else {
			if (p->fields >= max_fields)
				return bare_lf(s, n, UR_EHTTP_TOO_MANY_FIELDS);
			ret = field_line(s, n, fill ? &m->headers[p->fields] : NULL);
			if (ret < 0)
				return bare_lf(s, n, ret);
			p->fields++;
		}
		i = p->scanned = end + 2;
	}
}

static int parse(struct ur_http1_parser *p, const char *buf, size_t len, struct msg *m)
{
	/*
	 * A section that arrives whole (the usual case) is checked and recorded in one walk. One
	 * that resumes a partial section is checked from where the last call stopped, then walked
	 * again from the start line to record it: the buffer may have moved since.
	 */
	bool fresh = p->scanned == p->skip && !p->started;
	int ret = scan(p, buf, len, m, fresh);
	if (ret < 0)
		return ret;
	size_t total = (size_t)ret;
	if (!fresh) {
		p->scanned = p->skip;
		p->fields = 0;
		p->started = false;
		ret = scan(p, buf, len, m, true);
		if (ret < 0)
			return ret; /* cannot happen: the same bytes passed a moment ago */
	}
	if (m->kind == RESPONSE)
		m->rs->num_headers = p->fields;
	else
		m->rq->num_headers = p->fields;
	p->scanned = p->skip + total;
	/* The length returned counts from buf[0], skipped empty lines included. */
	return (int)(p->skip + total);
}

int ur_http1_parse_response(struct ur_http1_parser *p, const char *buf, size_t len,
                            struct ur_http1_response *r)
{
	struct msg m = {RESPONSE, r, NULL, r->headers, r->headers ? r->max_headers : 0};
	return parse(p, buf, len, &m);
}

int ur_http1_parse_request(struct ur_http1_parser *p, const char *buf, size_t len,
                           struct ur_http1_request *r)
{
	struct msg m = {REQUEST, NULL, r, r->headers, r->headers ? r->max_headers : 0};
	return parse(p, buf, len, &m);
}

/* Walks the comma-separated elements of a field value, OWS trimmed; empty ones are skipped. */
static bool next_elem(const char **s, const char *end, const char **e, size_t *en)
{
	while (*s < end) {
		const char *a = *s;
		const char *c = memchr(a, ',', (size_t)(end - a));
		const char *b = c ? c : end;
		*s = c ? c + 1 : end;
		while (a < b && is_ows((unsigned char)*a))
			a++;
		const char *z = b;
		while (z > a && is_ows((unsigned char)z[-1]))
			z--;
		if (z > a) {
			*e = a;
			*en = (size_t)(z - a);
			return true;
		}
	}
	return false;
}

ssize_t ur_http_header_find(const struct ur_http_header *h, size_t n, const char *name, size_t from)
{
	size_t len = strlen(name);
	for (size_t i = from; i < n; i++)
		if (ieqn(h[i].name, h[i].name_len, name, len))
			return (ssize_t)i;
	return -1;
}

bool ur_http_header_has_token(const struct ur_http_header *h, size_t n, const char *name,
                              const char *token)
{
	for (ssize_t i = ur_http_header_find(h, n, name, 0); i >= 0;
	     i = ur_http_header_find(h, n, name, (size_t)i + 1)) {
		const char *s = h[i].value, *end = s + h[i].value_len, *e;
		size_t en;
		while (next_elem(&s, end, &e, &en))
			if (ieq(e, en, token))
				return true;
	}
	return false;
}

/*
 * Reads Transfer-Encoding. Returns 0 with *present false when there is none; otherwise sets
 * *chunked_last and *codings. Errors: UR_EHTTP_TE for an unknown coding, chunked twice, or a
 * field with no coding at all.
 */
static int transfer_encoding(const struct ur_http_header *h, size_t n, bool *present,
                             bool *chunked_last, unsigned *codings)
{
	*present = *chunked_last = false;
	*codings = 0;
	bool chunked = false;
	for (ssize_t i = ur_http_header_find(h, n, "transfer-encoding", 0); i >= 0;
	     i = ur_http_header_find(h, n, "transfer-encoding", (size_t)i + 1)) {
		const char *s = h[i].value, *end = s + h[i].value_len, *e;
		size_t en;
		bool any = false;
		while (next_elem(&s, end, &e, &en)) {
			/*
			 * No coding urio knows takes parameters, so "chunked;x" is an unknown
			 * coding, not chunked: reading it as chunked while another parser reads it
			 * until close is how responses get split.
			 */
			size_t cn = en;
			any = true;
			*chunked_last = false;
			if (ieq(e, cn, "chunked")) {
				if (chunked)
					return UR_EHTTP_TE;
				chunked = *chunked_last = true;
			} else if (ieq(e, cn, "gzip") || ieq(e, cn, "x-gzip")) {
				*codings |= UR_HTTP1_TE_GZIP;
			} else if (ieq(e, cn, "deflate")) {
				*codings |= UR_HTTP1_TE_DEFLATE;
			} else if (ieq(e, cn, "compress") || ieq(e, cn, "x-compress")) {
				*codings |= UR_HTTP1_TE_COMPRESS;
			} else {
				return UR_EHTTP_TE;
			}
		}
		if (!any)
			return UR_EHTTP_TE;
		*present = true;
	}
	return 0;
}

/*
 * Reads Content-Length: every element of every field must be 1*DIGIT, fit 64 bits, and equal the
 * others (RFC 9110 §8.6). Returns 1 with *len set, 0 when absent, or UR_EHTTP_CLEN.
 */
static int content_length(const struct ur_http_header *h, size_t n, uint64_t *len)
{
	bool seen = false;
	for (ssize_t i = ur_http_header_find(h, n, "content-length", 0); i >= 0;
	     i = ur_http_header_find(h, n, "content-length", (size_t)i + 1)) {
		const char *s = h[i].value, *end = s + h[i].value_len;
		if (s == end)
			return UR_EHTTP_CLEN;
		/* Split by hand: an empty element ("5,,5") is as wrong as a bad digit here. */
		for (;;) {
			while (s < end && is_ows((unsigned char)*s))
				s++;
			uint64_t v = 0;
			const char *d = s;
			while (s < end && *s >= '0' && *s <= '9') {
				unsigned dig = (unsigned)(*s - '0');
				if (v > (UINT64_MAX - dig) / 10)
					return UR_EHTTP_CLEN;
				v = v * 10 + dig;
				s++;
			}
			if (s == d)
				return UR_EHTTP_CLEN;
			while (s < end && is_ows((unsigned char)*s))
				s++;
			if (seen && v != *len)
				return UR_EHTTP_CLEN;
			seen = true;
			*len = v;
			if (s == end)
				break;
			if (*s != ',')
				return UR_EHTTP_CLEN;
			s++;
		}
	}
	return seen ? 1 : 0;
}

static bool keep_alive(const struct ur_http_header *h, size_t n, int minor)
{
	if (ur_http_header_has_token(h, n, "connection", "close"))
		return false;
	if (minor == 0)
		return ur_http_header_has_token(h, n, "connection", "keep-alive");
	return true;
}

int ur_http1_response_framing(const struct ur_http1_response *r, const char *method,
                              struct ur_http1_framing *f)
{
	const struct ur_http_header *h = r->headers;
	size_t n = r->num_headers;
	memset(f, 0, sizeof(*f));
	f->keep_alive = keep_alive(h, n, r->minor_version);
	bool head = method && !strcmp(method, "HEAD");
	bool connect = method && !strcmp(method, "CONNECT");
	if (r->status == 101 || (connect && r->status / 100 == 2)) {
		/* The connection now speaks another protocol (or is a tunnel): never back to a
		 * pool. */
		f->body = UR_HTTP1_BODY_NONE;
		f->keep_alive = false;
		return 0;
	}
	if (head || r->status / 100 == 1 || r->status == 204 || r->status == 304) {
		f->body = UR_HTTP1_BODY_NONE;
		return 0;
	}
	bool te, chunked_last;
	int ret = transfer_encoding(h, n, &te, &chunked_last, &f->codings);
	if (ret < 0)
		return ret;
	if (te) {
		bool cl = ur_http_header_find(h, n, "content-length", 0) >= 0;
		if (chunked_last) {
			f->body = UR_HTTP1_BODY_CHUNKED;
			/* TE + CL, or TE in HTTP/1.0: framing someone may read differently (§6.1).
			 */
			if (cl || r->minor_version == 0)
				f->keep_alive = false;
		} else {
			f->body = UR_HTTP1_BODY_CLOSE;
			f->keep_alive = false;
		}
		return 0;
	}
	uint64_t len = 0;
	ret = content_length(h, n, &len);
	if (ret < 0)
		return ret;
	if (ret == 1) {
		f->body = UR_HTTP1_BODY_LENGTH;
		f->length = len;
		return 0;
	}
	f->body = UR_HTTP1_BODY_CLOSE;
	f->keep_alive = false;
	return 0;
}

int ur_http1_request_framing(const struct ur_http1_request *r, struct ur_http1_framing *f)
{
	const struct ur_http_header *h = r->headers;
	size_t n = r->num_headers;
	memset(f, 0, sizeof(*f));
	f->keep_alive = keep_alive(h, n, r->minor_version);
	bool te, chunked_last;
	int ret = transfer_encoding(h, n, &te, &chunked_last, &f->codings);
	if (ret < 0)
		return ret;
	bool cl = ur_http_header_find(h, n, "content-length", 0) >= 0;
	if (te && cl)
		return UR_EHTTP_TE_CLEN;
	if (te) {
		if (!chunked_last || r->minor_version == 0)
			return UR_EHTTP_TE;
		f->body = UR_HTTP1_BODY_CHUNKED;
		return 0;
	}
	uint64_t len = 0;
	ret = content_length(h, n, &len);
	if (ret < 0)
		return ret;
	f->body = ret == 1 ? UR_HTTP1_BODY_LENGTH : UR_HTTP1_BODY_NONE;
	f->length = len;
	return 0;
}

int ur_http_header_check(const char *name, size_t name_len, const char *value, size_t value_len)
{
	if (name_len == 0)
		return UR_EHTTP_HNAME;
	for (size_t i = 0; i < name_len; i++)
		if (!is_tchar((unsigned char)name[i]))
			return UR_EHTTP_HNAME;
	for (size_t i = 0; i < value_len; i++)
		if (!is_vchar_ws((unsigned char)value[i]))
			return UR_EHTTP_HVALUE;
	if (value_len &&
	    (is_ows((unsigned char)value[0]) || is_ows((unsigned char)value[value_len - 1])))
		return UR_EHTTP_HVALUE;
	return 0;
}

/* ---- chunked ---- */

enum {
	CH_SIZE0,   /* first hex digit of a chunk size */
	CH_SIZE,    /* more hex digits, or what follows them */
	CH_BWS,     /* whitespace after the size: only ';' may follow */
	CH_EXT,     /* chunk extensions, up to CR */
	CH_SIZE_LF, /* LF after the size line */
	CH_DATA,    /* chunk data */
	CH_DATA_CR, /* CR after the data */
	CH_DATA_LF, /* LF after the data */
	CH_TSTART,  /* start of a trailer line, or the final CRLF */
	CH_TNAME,   /* trailer field name */
	CH_TVALUE,  /* trailer field value, up to CR */
	CH_TLF,     /* LF after a trailer line */
	CH_END_LF,  /* LF of the final CRLF */
	CH_DONE,
};

void ur_http1_chunked_init(struct ur_http1_chunked *d, const struct ur_http1_limits *lim)
{
	memset(d, 0, sizeof(*d));
	d->max_line = or_default(lim ? lim->max_chunk_line : 0, UR_HTTP1_MAX_CHUNK_LINE);
	d->max_trailer = or_default(lim ? lim->max_trailer_bytes : 0, UR_HTTP1_MAX_TRAILER_BYTES);
	d->state = CH_SIZE0;
}

bool ur_http1_chunked_done(const struct ur_http1_chunked *d)
{
	return d->state == CH_DONE;
}

uint32_t ur_http1_chunked_trailer_len(const struct ur_http1_chunked *d)
{
	return d->trailer;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* One framing byte. Returns 0 or an error. */
static int chunk_byte(struct ur_http1_chunked *d, unsigned char c)
{
	switch (d->state) {
	case CH_SIZE0:
	case CH_SIZE:
	case CH_BWS:
	case CH_EXT:
		if (c != '\r' && ++d->line > d->max_line)
			return UR_EHTTP_CHUNK_EXT;
		break;
	case CH_TSTART:
	case CH_TNAME:
	case CH_TVALUE:
	case CH_TLF:
	case CH_END_LF:
		if (++d->trailer > d->max_trailer)
			return UR_EHTTP_TRAILER;
		break;
	}
	switch (d->state) {
	case CH_SIZE0: {
		int v = hexval(c);
		if (v < 0)
			return UR_EHTTP_CHUNK;
		d->size = (uint64_t)v;
		d->state = CH_SIZE;
		return 0;
	}
	case CH_SIZE: {
		int v = hexval(c);
		if (v >= 0) {
			if (d->size > (UINT64_MAX >> 4))
				return UR_EHTTP_CHUNK_OVERFLOW;
			d->size = d->size << 4 | (uint64_t)v;
			return 0;
		}
		if (c == '\r')
			d->state = CH_SIZE_LF;
		else if (c == ';')
			d->state = CH_EXT;
		else if (is_ows(c))
			d->state = CH_BWS;
		else
			return UR_EHTTP_CHUNK;
		return 0;
	}
	case CH_BWS:
		if (c == ';')
			d->state = CH_EXT;
		else if (!is_ows(c))
			return UR_EHTTP_CHUNK;
		return 0;
	case CH_EXT:
		if (c == '\r')
			d->state = CH_SIZE_LF;
		else if (!is_vchar_ws(c))
			return UR_EHTTP_CHUNK;
		return 0;
	case CH_SIZE_LF:
		if (c != '\n')
			return UR_EHTTP_CHUNK;
		d->line = 0;
		d->remaining = d->size;
		d->state = d->size ? CH_DATA : CH_TSTART;
		return 0;
	case CH_DATA_CR:
		if (c != '\r')
			return UR_EHTTP_CHUNK;
		d->state = CH_DATA_LF;
		return 0;
	case CH_DATA_LF:
		if (c != '\n')
			return UR_EHTTP_CHUNK;
		d->state = CH_SIZE0;
		return 0;
	case CH_TSTART:
		if (c == '\r')
			d->state = CH_END_LF;
		else if (is_tchar(c))
			d->state = CH_TNAME;
		else
			return UR_EHTTP_TRAILER; /* obs-fold, empty name, bare LF */
		return 0;
	case CH_TNAME:
		if (c == ':')
			d->state = CH_TVALUE;
		else if (!is_tchar(c))
			return UR_EHTTP_TRAILER;
		return 0;
	case CH_TVALUE:
		if (c == '\r')
			d->state = CH_TLF;
		else if (!is_vchar_ws(c))
			return UR_EHTTP_TRAILER;
		return 0;
	case CH_TLF:
		if (c != '\n')
			return UR_EHTTP_TRAILER;
		d->state = CH_TSTART;
		return 0;
	case CH_END_LF:
		if (c != '\n')
			return UR_EHTTP_TRAILER;
		d->state = CH_DONE;
		return 0;
	default:
		return UR_EHTTP_CHUNK;
	}
}

ssize_t ur_http1_chunked_decode(struct ur_http1_chunked *d, const char *buf, size_t len,
                                const char **data, size_t *data_len)
{
	*data = NULL;
	*data_len = 0;
	size_t i = 0;
	while (i < len && d->state != CH_DONE) {
		if (d->state == CH_DATA) {
			size_t n = len - i;
			if (n > d->remaining)
				n = (size_t)d->remaining;
			*data = buf + i;
			*data_len = n;
			d->remaining -= n;
			if (d->remaining == 0)
				d->state = CH_DATA_CR;
			return (ssize_t)(i + n);
		}
		int ret = chunk_byte(d, (unsigned char)buf[i]);
		if (ret < 0)
			return ret;
		i++;
	}
	return (ssize_t)i;
}
