/* SPDX-License-Identifier: MIT */
/*
 * urio/http1.h - HTTP/1.1 message parsing (RFC 9112): responses, requests, chunked bodies.
 *
 * Pure functions in the picohttpparser mould: no allocation, no I/O, nothing copied. The parsers
 * read the caller's buffer and return pointers + lengths into it; the caller keeps the bytes
 * alive and unmoved while it uses them. Incremental: call again with the same bytes plus whatever
 * arrived (the buffer may have moved between calls: no pointer is kept in the parser, only
 * offsets); UR_EHTTP_INCOMPLETE means "need more", every other negative value is an error after
 * which the connection must be closed. Strict by design (docs/http1.md lists every decision):
 * lines end in CRLF only, obsolete line folding is rejected, field names are tokens with no
 * whitespace before the colon, values carry no control bytes but HTAB, and each limit has its
 * own error code.
 *
 * Typical client use:
 *
 *   struct ur_http1_parser p;  ur_http1_parser_init(&p, NULL);
 *   struct ur_http_header h[100];
 *   struct ur_http1_response r = {.headers = h, .max_headers = 100};
 *   for (;;) {   read more into buf[0..len)
 *           int n = ur_http1_parse_response(&p, buf, len, &r);
 *           if (n == UR_EHTTP_INCOMPLETE) continue;  if (n < 0) fail;  break;  }
 *   ur_http1_response_framing(&r, "GET", &f);  then the body starts at buf + n
 */
#ifndef URIO_HTTP1_H
#define URIO_HTTP1_H

#include <stdbool.h>
#include <sys/types.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One header field: pointers into the parsed buffer. The value has no leading/trailing OWS. */
struct ur_http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/* Default limits: aiohttp's 8190-byte lines and fields, curl's 300 KiB header section. */
#define UR_HTTP1_MAX_LINE          8190u
#define UR_HTTP1_MAX_FIELD         8190u
#define UR_HTTP1_MAX_FIELDS        128u
#define UR_HTTP1_MAX_HEADER_BYTES  (300u * 1024u)
#define UR_HTTP1_MAX_CHUNK_LINE    4096u
#define UR_HTTP1_MAX_TRAILER_BYTES 8192u

/* Limits; a field left 0 takes its default above. Lengths exclude the CRLF. */
struct ur_http1_limits {
	uint32_t max_line;          /* status or request line */
	uint32_t max_field;         /* one header field line, name through value */
	uint32_t max_fields;        /* number of header fields (also bounded by max_headers) */
	uint32_t max_header_bytes;  /* the whole header section, start line and final CRLF in */
	uint32_t max_chunk_line;    /* one chunk-size line: size digits and extensions */
	uint32_t max_trailer_bytes; /* the trailer section after the last chunk */
};

/* Parser state for one message; re-initialise before the next message on a connection. */
struct ur_http1_parser {
	struct ur_http1_limits lim; /* public: the limits in force (defaults filled in) */
	/* private */
	size_t scanned; /* bytes of whole lines already checked */
	size_t skip;    /* empty lines skipped before a request line */
	size_t fields;  /* fields among the checked lines */
	bool started;   /* the start line is among them */
};

/* Sets @p up for a new message with @lim (NULL: every default). Never fails. */
UR_EXPORT void ur_http1_parser_init(struct ur_http1_parser *p, const struct ur_http1_limits *lim);

struct ur_http1_response {
	/* in: where to put the header fields, and how many fit */
	struct ur_http_header *headers;
	size_t max_headers;
	/* out, valid after a return > 0 */
	size_t num_headers;
	int minor_version; /* 0 or 1 for HTTP/1.0, HTTP/1.1 (any 1.x above 1 reads as 1) */
	int status;        /* 100..999 */
	const char *reason;
	size_t reason_len;
};

/*
 * Parses a response's status line and header section from @buf[0..@len).
 * Returns the header section's length (> 0; the body or the next message starts at @buf + it)
 * with @r filled in; UR_EHTTP_INCOMPLETE when the section is not complete yet (call again with
 * more bytes); or an error:
 *   UR_EHTTP_SYNTAX, UR_EHTTP_VERSION, UR_EHTTP_STATUS, UR_EHTTP_NEWLINE, UR_EHTTP_OBSFOLD,
 *   UR_EHTTP_HNAME, UR_EHTTP_HVALUE            malformed input
 *   UR_EHTTP_LINE_TOO_LONG, UR_EHTTP_FIELD_TOO_LONG, UR_EHTTP_TOO_MANY_FIELDS,
 *   UR_EHTTP_HEADER_TOO_BIG                     a limit of @p (or @r->max_headers) exceeded
 * Errors are reported as soon as the offending line is complete (or a limit is passed), not only
 * at the end of the section. @r's pointers point into @buf; nothing is kept past the call but
 * offsets in @p, so @buf may move between calls as long as its bytes stay the same.
 */
UR_EXPORT int ur_http1_parse_response(struct ur_http1_parser *p, const char *buf, size_t len,
                                      struct ur_http1_response *r);

struct ur_http1_request {
	/* in */
	struct ur_http_header *headers;
	size_t max_headers;
	/* out, valid after a return > 0 */
	size_t num_headers;
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int minor_version;
};

/*
 * Parses a request line and header section, as ur_http1_parse_response() does a response (same
 * returns, and UR_EHTTP_METHOD, UR_EHTTP_TARGET for the request line). Empty lines before the
 * request line are skipped (RFC 9112 §2.2), within max_line bytes.
 */
UR_EXPORT int ur_http1_parse_request(struct ur_http1_parser *p, const char *buf, size_t len,
                                     struct ur_http1_request *r);

/* How a message's body is delimited. */
enum ur_http1_body {
	UR_HTTP1_BODY_NONE = 0, /* no body: the message ends with its header section */
	UR_HTTP1_BODY_LENGTH,   /* exactly `length` bytes (length may be 0) */
	UR_HTTP1_BODY_CHUNKED,  /* chunked: feed the bytes to ur_http1_chunked_decode() */
	UR_HTTP1_BODY_CLOSE,    /* everything until the server closes the connection */
};

/* Transfer codings other than chunked that the body carries, outermost last (decode in reverse). */
#define UR_HTTP1_TE_GZIP     0x1u /* gzip or x-gzip */
#define UR_HTTP1_TE_DEFLATE  0x2u
#define UR_HTTP1_TE_COMPRESS 0x4u /* compress or x-compress */

struct ur_http1_framing {
	enum ur_http1_body body;
	uint64_t length;  /* UR_HTTP1_BODY_LENGTH only */
	unsigned codings; /* UR_HTTP1_TE_* present besides chunked; the caller decodes or fails */
	bool keep_alive;  /* the connection may carry another message once this one ended exactly */
};

/*
 * Decides how the body of the response @r to a request with method @method (NUL-terminated,
 * case-sensitive as in RFC 9110: "HEAD", "CONNECT", ...) is framed, per RFC 9112 §6.3:
 *   - HEAD, 1xx, 204, 304, and 2xx to CONNECT: no body (101 and CONNECT 2xx are not reusable);
 *   - Transfer-Encoding ending in chunked: chunked (with a Content-Length as well, or in an
 *     HTTP/1.0 response: still chunked, but keep_alive is false);
 *   - Transfer-Encoding not ending in chunked: until close;
 *   - Content-Length (repeated identical values allowed): that many bytes;
 *   - neither: until close.
 * keep_alive: HTTP/1.1 unless a "close" token is in Connection; HTTP/1.0 only with a
 * "keep-alive" token; never when the body runs until close.
 * Returns 0, or UR_EHTTP_CLEN (Content-Length not 1*DIGIT, overflowing 64 bits, or two different
 * values: RFC 9112 §6.3 item 5 makes the response unusable), UR_EHTTP_TE (an unknown transfer
 * coding, chunked applied twice, an empty coding). The connection must be closed on error.
 */
UR_EXPORT int ur_http1_response_framing(const struct ur_http1_response *r, const char *method,
                                        struct ur_http1_framing *f);

/*
 * Decides how the body of request @r is framed (RFC 9112 §6.3 for a server): Transfer-Encoding
 * whose last coding is chunked: chunked; Content-Length: that many bytes; neither: none (length
 * 0). keep_alive as for responses. Returns 0, or:
 *   UR_EHTTP_TE_CLEN  both Transfer-Encoding and Content-Length (a request-smuggling defence:
 *                     answer 400 and close)
 *   UR_EHTTP_TE       Transfer-Encoding in an HTTP/1.0 request, not ending in chunked, or with an
 *                     unknown or repeated coding
 *   UR_EHTTP_CLEN     as for responses
 */
UR_EXPORT int ur_http1_request_framing(const struct ur_http1_request *r,
                                       struct ur_http1_framing *f);

/* Chunked body decoder state (RFC 9112 §7.1). Caller-owned; no pointer into the data is kept. */
struct ur_http1_chunked {
	/* private */
	uint64_t remaining; /* data bytes left in the current chunk */
	uint64_t size;      /* chunk size being read */
	uint32_t line;      /* bytes of the current size or trailer line */
	uint32_t trailer;   /* trailer section bytes so far */
	uint32_t max_line, max_trailer;
	uint8_t state;
};

/* Sets @d up for a new body with @lim's chunk limits (NULL: defaults). Never fails. */
UR_EXPORT void ur_http1_chunked_init(struct ur_http1_chunked *d, const struct ur_http1_limits *lim);

/*
 * Decodes chunked data from @buf[0..@len), without copying. Consumes framing bytes (sizes,
 * extensions, CRLFs, trailers) into @d's state and stops at the first run of body bytes, which it
 * returns in *@data / *@data_len (pointers into @buf; *@data_len is 0 when the call found none).
 * Returns the number of bytes of @buf consumed, the body run included (0 only when @len is 0 or
 * the body is done). Call again with the rest; every byte is consumed until the end, so "need
 * more" is simply a return of @len with ur_http1_chunked_done() false. Bytes after the body's end
 * (the next message) are never consumed. Trailer fields are checked and skipped.
 * Errors (the connection must be closed): UR_EHTTP_CHUNK (bad hex, missing CRLF, bare LF),
 * UR_EHTTP_CHUNK_OVERFLOW (size above 2^64 - 1), UR_EHTTP_CHUNK_EXT (size line over
 * max_chunk_line), UR_EHTTP_TRAILER (malformed trailer field or section over max_trailer_bytes).
 */
UR_EXPORT ssize_t ur_http1_chunked_decode(struct ur_http1_chunked *d, const char *buf, size_t len,
                                          const char **data, size_t *data_len);

/* True once the last chunk and the trailer section have been consumed. */
UR_EXPORT bool ur_http1_chunked_done(const struct ur_http1_chunked *d);

/*
 * Bytes of the trailer section (its fields and the final CRLF) consumed so far. They are always
 * the last bytes a ur_http1_chunked_decode() call consumed, so a caller that wants the trailer
 * fields copies the last (this count's growth) bytes of each call's span: they are checked
 * field lines ("name:value" with optional whitespace, CRLF-terminated), then the final CRLF.
 */
UR_EXPORT uint32_t ur_http1_chunked_trailer_len(const struct ur_http1_chunked *d);

/*
 * Finds the first header field named @name (NUL-terminated, compared ASCII case-insensitively)
 * at index @from or later in @h[0..@n). Returns its index, or -1. All values of a repeated field:
 *   for (ssize_t i = ur_http_header_find(h, n, "set-cookie", 0); i >= 0;
 *        i = ur_http_header_find(h, n, "set-cookie", i + 1)) ...
 */
UR_EXPORT ssize_t ur_http_header_find(const struct ur_http_header *h, size_t n, const char *name,
                                      size_t from);

/*
 * True when any field named @name holds @token (case-insensitive) among its comma-separated
 * elements, e.g. ("connection", "close") or ("transfer-encoding", "chunked").
 */
UR_EXPORT bool ur_http_header_has_token(const struct ur_http_header *h, size_t n, const char *name,
                                        const char *token);

/*
 * Checks a header field a user wants to send: @name must be a non-empty token (RFC 9110 §5.6.2),
 * @value may hold visible ASCII, obs-text (>= 0x80), spaces and tabs, but no CR, LF, NUL or other
 * control byte, and no leading or trailing whitespace. Returns 0, UR_EHTTP_HNAME or
 * UR_EHTTP_HVALUE. This is the defence against header injection ("X: a\r\nEvil: b").
 */
UR_EXPORT int ur_http_header_check(const char *name, size_t name_len, const char *value,
                                   size_t value_len);

#ifdef __cplusplus
}
#endif

#endif
