/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/diff_llhttp.c - differential check of urio's HTTP/1.1 parser against llhttp 8.1
 * (node's parser; the distribution's node-llhttp ships its C sources).
 *
 * Every input - the framing table of tests/proto/http1_cases.h, and each file of the response
 * and request corpora given as arguments - goes through both parsers whole. The verdicts (a
 * message, "need more", or an error) and, when both accept, the status, body bytes, keep-alive
 * and the bytes left after the message are compared. A disagreement is either a known, deliberate
 * one (urio is stricter: each rule below says why, and docs/reliability.md has the table) or a
 * failure of this test. Prints one line per disagreement and a summary per rule.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <llhttp.h>

#include "../proto/http1_cases.h"

struct ll_out {
	int verdict; /* 0 message, 1 need more, 2 error */
	const char *err;
	int status;
	bool keep_alive;
	size_t body_len;
	char body[H1_BODY_MAX];
	size_t rest;
	bool complete;
	bool head, connect;
};

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct ll_out *o = p->data;
	if (o->body_len + len <= H1_BODY_MAX)
		memcpy(o->body + o->body_len, at, len);
	o->body_len += len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct ll_out *o = p->data;
	if (o->connect && p->status_code / 100 == 2)
		return 2; /* a tunnel: no body, the connection is no longer HTTP */
	return o->head ? 1 : 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct ll_out *o = p->data;
	o->complete = true;
	o->status = p->status_code;
	o->keep_alive = llhttp_should_keep_alive(p);
	return HPE_PAUSED; /* stop at the end of the first message, like urio */
}

static void ll_run(bool request, const char *method, const char *buf, size_t n, struct ll_out *o)
{
	memset(o, 0, sizeof(*o));
	o->head = method && !strcmp(method, "HEAD");
	o->connect = method && !strcmp(method, "CONNECT");
	llhttp_settings_t s;
	llhttp_settings_init(&s);
	s.on_body = on_body;
	s.on_headers_complete = on_headers_complete;
	s.on_message_complete = on_message_complete;
	llhttp_t p;
	llhttp_init(&p, request ? HTTP_REQUEST : HTTP_RESPONSE, &s);
	p.data = o;
	llhttp_errno_t e = llhttp_execute(&p, buf, n);
	if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		o->rest = n - (size_t)(llhttp_get_error_pos(&p) - buf);
		o->verdict = o->complete ? 0 : 2;
		return;
	}
	if (e != HPE_OK) {
		o->verdict = 2;
		o->err = llhttp_errno_name(e);
		return;
	}
	/* Everything consumed: an end of input either finishes a close-delimited body or not. */
	e = llhttp_finish(&p);
	if (o->complete) {
		o->verdict = 0;
		return;
	}
	o->verdict = e == HPE_OK ? 1 : (e == HPE_INVALID_EOF_STATE ? 1 : 2);
	o->err = llhttp_errno_name(e);
}

/*
 * The deliberate differences. Each: the urio verdict it applies to, what llhttp does, and why
 * urio differs (docs/reliability.md repeats the table).
 */
struct rule {
	const char *name;
	int urio_err;   /* urio's verdict (0: accepted) */
	int ll_verdict; /* llhttp's: 0 message, 1 need more, 2 error, -1 any */
	const char *why;
	int count;
};

static struct rule rules[] = {
    {"obs-fold", UR_EHTTP_OBSFOLD, -1,
     "RFC 9112 §5.2: obsolete line folding is rejected rather than unfolded"},
    {"bare-lf", UR_EHTTP_NEWLINE, -1,
     "lines must end in CRLF; a bare LF or CR is a smuggling vector"},
    {"conflicting-cl", UR_EHTTP_CLEN, -1,
     "RFC 9112 §6.3.5: an invalid or conflicting Content-Length makes the message unusable"},
    {"transfer-coding", UR_EHTTP_TE, -1,
     "unknown codings, chunked twice, an empty Transfer-Encoding: refused, not guessed"},
    {"te-and-cl-request", UR_EHTTP_TE_CLEN, -1,
     "RFC 9112 §6.3.3: a request with both is refused (smuggling defence)"},
    {"header-name", UR_EHTTP_HNAME, -1,
     "field names are tokens; whitespace before the colon is refused (RFC 9112 §5.1)"},
    {"header-value", UR_EHTTP_HVALUE, -1, "control bytes in values are refused"},
    {"status-line", UR_EHTTP_STATUS, -1, "status codes are exactly three digits, 100..999"},
    {"syntax", UR_EHTTP_SYNTAX, -1, "start line and field line syntax is strict"},
    {"version", UR_EHTTP_VERSION, -1, "only HTTP/1.x"},
    {"request-target", UR_EHTTP_TARGET, -1,
     "request targets are visible ASCII only (no obs-text, no DEL)"},
    {"method", UR_EHTTP_METHOD, -1, "methods are tokens"},
    {"chunk-syntax", UR_EHTTP_CHUNK, -1,
     "chunk size lines: hex, then ';' extensions; whitespace only before ';'"},
    {"chunk-overflow", UR_EHTTP_CHUNK_OVERFLOW, -1, "chunk sizes above 2^64-1 are refused"},
    {"trailer", UR_EHTTP_TRAILER, -1, "trailer fields are checked like header fields"},
    {"limits", UR_EHTTP_HEADER_TOO_BIG, -1, "urio's configurable header limits"},
    {"limits", UR_EHTTP_LINE_TOO_LONG, -1, "urio's configurable header limits"},
    {"limits", UR_EHTTP_FIELD_TOO_LONG, -1, "urio's configurable header limits"},
    {"limits", UR_EHTTP_TOO_MANY_FIELDS, -1, "urio's configurable header limits"},
    {"chunk-line-limit", UR_EHTTP_CHUNK_EXT, -1, "chunk size lines are bounded"},
    /* urio accepts, llhttp refuses */
    {"te-not-chunked-response", 0, 2,
     "RFC 9112 §6.3.4: a response whose Transfer-Encoding does not end in chunked is read until "
     "close; llhttp 8.1 refuses it unless lenient"},
    /* rules matched by a condition in compare() rather than by verdicts alone */
    {"te-and-cl-response", 0, 2,
     "RFC 9112 §6.3.3: in a response, Transfer-Encoding overrides Content-Length; urio frames by "
     "the Transfer-Encoding, never reusing the connection; llhttp 8.1 refuses the response"},
    {"extension-method", 0, 2,
     "RFC 9110 §9: a method is any token; llhttp knows a fixed list (the server answers 501 for "
     "methods it does not implement)"},
    {"content-length-repeats", 0, 2,
     "RFC 9110 §8.6: identical repeated values (\"5, 5\" or two fields) and OWS are accepted; "
     "llhttp refuses a second Content-Length"},
    {"chunk-extensions", 0, 2,
     "BWS before ';' (RFC 9112 §7.1.1) is accepted; extensions are checked for control bytes "
     "and skipped, not parsed, so an empty one (\"0;\") passes; llhttp parses their grammar"},
    {"http-1x", 0, 2,
     "RFC 9112 §2.3: HTTP/1.2+ is read as the highest 1.x urio speaks; llhttp refuses it"},
    {"no-body-status", 0, 1,
     "RFC 9112 §6.3.1: 204 and 304 have no body whatever Content-Length says; llhttp reads one "
     "unless its caller skips it"},
    {"upgrade-not-reusable", 0, 0,
     "101 and 2xx to CONNECT: the connection leaves HTTP, urio never offers it for reuse; "
     "llhttp's should_keep_alive says the connection stays open"},
    {"te-in-http10", 0, 0,
     "RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message: close after it, even with "
     "keep-alive"},
};

static struct rule *rule_named(const char *name)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (!strcmp(rules[i].name, name))
			return &rules[i];
	return NULL;
}

/* urio accepts, llhttp refuses: which llhttp error, under which urio outcome, is which rule. */
static struct rule *accepted_by_urio_only(const struct h1_out *u, const char *ll_err, bool request)
{
	if (!strcmp(ll_err, "HPE_INVALID_TRANSFER_ENCODING") && u->f.body == UR_HTTP1_BODY_CLOSE)
		return rule_named("te-not-chunked-response");
	if (!strcmp(ll_err, "HPE_UNEXPECTED_CONTENT_LENGTH") &&
	    (u->f.body == UR_HTTP1_BODY_CHUNKED || u->f.body == UR_HTTP1_BODY_CLOSE) &&
	    !u->f.keep_alive && !request)
		return rule_named("te-and-cl-response");
	if (!strcmp(ll_err, "HPE_INVALID_METHOD") && request)
		return rule_named("extension-method");
	if (!strcmp(ll_err, "HPE_UNEXPECTED_CONTENT_LENGTH") ||
	    !strcmp(ll_err, "HPE_INVALID_CONTENT_LENGTH"))
		return u->f.body == UR_HTTP1_BODY_LENGTH ? rule_named("content-length-repeats")
		                                         : NULL;
	if (!strcmp(ll_err, "HPE_INVALID_CHUNK_SIZE") || !strcmp(ll_err, "HPE_STRICT"))
		return u->f.body == UR_HTTP1_BODY_CHUNKED ? rule_named("chunk-extensions") : NULL;
	if (!strcmp(ll_err, "HPE_INVALID_VERSION") && u->minor == 1)
		return rule_named("http-1x");
	return NULL;
}

static int unexplained;

static struct rule *find_rule(int urio_err, int ll_verdict)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].urio_err == urio_err &&
		    (rules[i].ll_verdict < 0 || rules[i].ll_verdict == ll_verdict))
			return &rules[i];
	return NULL;
}

static const char *urio_verdict(int err)
{
	return err == 0                     ? "message"
	       : err == UR_EHTTP_INCOMPLETE ? "need-more"
	                                    : ur_strerror_name(err);
}

static const char *ll_verdict(const struct ll_out *l)
{
	return l->verdict == 0   ? "message"
	       : l->verdict == 1 ? "need-more"
	       : l->err          ? l->err
	                         : "error";
}

static int compared;

static void compare(const char *name, bool request, const char *method, const char *buf, size_t n)
{
	static struct h1_out u;
	static struct ll_out l;
	h1_run(request, method, buf, n, NULL, 0, &u);
	ll_run(request, method, buf, n, &l);
	compared++;
	int uv = u.err == 0 ? 0 : u.err == UR_EHTTP_INCOMPLETE ? 1 : 2;
	const char *what = NULL;
	if (uv != l.verdict)
		what = "verdict";
	else if (uv == 0 && !request && u.status != l.status)
		what = "status";
	else if (uv == 0 && u.body_len != l.body_len)
		what = "body length";
	else if (uv == 0 &&
	         memcmp(u.body, l.body, u.body_len < H1_BODY_MAX ? u.body_len : H1_BODY_MAX))
		what = "body bytes";
	else if (uv == 0 && u.f.keep_alive != l.keep_alive)
		what = "keep-alive";
	else if (uv == 0 && u.rest != l.rest)
		what = "rest";
	if (!what)
		return;
	struct rule *r = NULL;
	bool connect = method && !strcmp(method, "CONNECT");
	if (!strcmp(what, "verdict") && uv == 0 && l.verdict == 1 &&
	    (u.status == 204 || u.status == 304))
		r = rule_named("no-body-status");
	else if (!strcmp(what, "verdict") && uv == 0 && l.verdict == 2)
		r = accepted_by_urio_only(&u, l.err ? l.err : "", request);
	else if (!strcmp(what, "verdict"))
		r = find_rule(uv == 2 ? u.err : 0, l.verdict);
	else if (!strcmp(what, "keep-alive") && !request &&
	         (u.status == 101 || (connect && u.status / 100 == 2)))
		r = rule_named("upgrade-not-reusable");
	else if (!strcmp(what, "keep-alive") && u.minor == 0 && u.f.body == UR_HTTP1_BODY_CHUNKED)
		r = rule_named("te-in-http10");
	if (r) {
		r->count++;
		return;
	}
	unexplained++;
	printf(
	    "UNEXPLAINED %s: %s differs: urio %s (body %zu, ka %d, rest %zu) llhttp %s (body %zu, "
	    "ka %d, rest %zu)\n",
	    name, what, urio_verdict(u.err), u.body_len, u.f.keep_alive, u.rest, ll_verdict(&l),
	    l.body_len, l.keep_alive, l.rest);
}

static void run_corpus(const char *dir, bool request)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		perror(dir);
		exit(1);
	}
	static const char *const methods[] = {"GET", "HEAD", "CONNECT", "POST"};
	for (int k = 0; k < n; k++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[k]->d_name);
		struct stat st;
		FILE *f = names[k]->d_name[0] != '.' && !stat(path, &st) && S_ISREG(st.st_mode)
		              ? fopen(path, "rb")
		              : NULL;
		if (f) {
			char *buf = malloc((size_t)st.st_size + 1);
			size_t len = fread(buf, 1, (size_t)st.st_size, f);
			fclose(f);
			if (len >= 3) {
				/* The fuzz targets' layout: method, two cut points, the message. */
				char *msg = malloc(len - 3 + 1);
				memcpy(msg, buf + 3, len - 3);
				compare(path, request, methods[buf[0] & 3], msg, len - 3);
				free(msg);
			}
			free(buf);
		}
		free(names[k]);
	}
	free(names);
}

int main(int argc, char **argv)
{
	for (size_t i = 0; i < H1_NCASES; i++) {
		const struct h1_case *c = &h1_cases[i];
		compare(c->name, c->request, c->method, c->in, h1_len(c));
	}
	/* Arguments: response corpus directories, then "--request" and request corpus directories.
	 */
	bool request = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--request"))
			request = true;
		else
			run_corpus(argv[i], request);
	}
	printf("%d inputs compared; deliberate differences:\n", compared);
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].count)
			printf("  %-24s %4d  %s\n", rules[i].name, rules[i].count, rules[i].why);
	printf("%d unexplained\n", unexplained);
	return unexplained ? 1 : 0;
}
