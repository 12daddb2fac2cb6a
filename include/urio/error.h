/* SPDX-License-Identifier: MIT */
/*
 * urio/error.h - error codes.
 *
 * Every urio call that can fail returns an int (or ssize_t): >= 0 is success and a negative value
 * is an error. Errors that the kernel reports come back unchanged as -errno (-ECONNRESET,
 * -ENOENT...). urio's own errors live in a reserved range, [UR_ERANGE_MIN, UR_ERANGE_MAX], far
 * below any errno value, split into one block of 100 per layer. ur_strerror() names every code.
 * urio never sets errno, never prints and never exits.
 */
#ifndef URIO_ERROR_H
#define URIO_ERROR_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define UR_ERANGE_MAX (-30000)
#define UR_ERANGE_MIN (-30999)

enum ur_error {
	/* core: -30000 .. -30099 */
	UR_ELOOPCLOSED = -30001, /* the loop is being torn down; nothing new may start */
	UR_EWRONGLOOP = -30002,  /* the future belongs to another loop */
	UR_ENOTASK = -30003,     /* the call must be made from inside a task */
	UR_ERINGSIZE = -30004,   /* ring size out of range: SQ 3..32768, CQ SQ..65536 entries */
	UR_ENOURING = -30005,    /* io_uring is disabled, forbidden, or not in this kernel */
	UR_ERINGMEM = -30006,    /* no memory for the rings (before 5.12: RLIMIT_MEMLOCK) */

	/* resolver (urio/resolve.h): -30100 .. -30199 */
	UR_ENONAME = -30100,   /* the name does not exist, or has no address of that family */
	UR_ENAMETEMP = -30101, /* temporary failure in name resolution: try again later */
	UR_ENAMEFAIL = -30102, /* non-recoverable failure of the name service */
	UR_EFAMILY = -30103,   /* address family not supported */
	UR_ERESOLVE = -30104,  /* name resolution failed for another reason */

	/* TLS (urio/tls.h): -30200 .. -30299; ur_tls_error_text() has OpenSSL's reason */
	UR_ETLS = -30200,          /* a TLS protocol error after the handshake */
	UR_ETLSHANDSHAKE = -30201, /* the handshake failed (refused, garbage, peer closed) */
	UR_ETLSVERIFY = -30202,    /* the peer's certificate did not verify */
	UR_ETLSHOSTNAME = -30203,  /* the certificate does not name the host */
	UR_ETLSVERSION = -30204,   /* no protocol version both sides accept */
	UR_ETLSTRUNCATED = -30205, /* the peer closed the connection without close_notify */
	UR_ETLSCONFIG = -30206,    /* a certificate, key or CA that does not load; a bad option */
	UR_ETLSCLOSED = -30207,    /* writing after this side sent close_notify */

	/* URL (urio/url.h): -30300 .. -30399 */
	UR_EURL_SCHEME = -30301,  /* no scheme, or not http/https, or no "//" after it */
	UR_EURL_CTRL = -30302,    /* a control byte (CR, LF, NUL, < 0x20, DEL) in a URL */
	UR_EURL_SPACE = -30303,   /* a space in a URL */
	UR_EURL_HOST = -30304,    /* empty or invalid host */
	UR_EURL_IPV6 = -30305,    /* malformed IPv6 literal, zone identifier or IPvFuture */
	UR_EURL_PORT = -30306,    /* port not digits, 0, or above 65535 */
	UR_EURL_PERCENT = -30307, /* '%' not followed by two hex digits */
	UR_EURL_TOOLONG = -30308, /* normalised URL or host too long */

	/* HTTP/1.1 parser (urio/http1.h): -30400 .. -30439; the HTTP client: -30440 .. -30499 */
	UR_EHTTP_INCOMPLETE = -30400,      /* not an error: the message needs more bytes */
	UR_EHTTP_SYNTAX = -30401,          /* malformed start line or header field */
	UR_EHTTP_VERSION = -30402,         /* not HTTP/1.x */
	UR_EHTTP_STATUS = -30403,          /* status code not three digits in 100..999 */
	UR_EHTTP_LINE_TOO_LONG = -30404,   /* status or request line over the limit */
	UR_EHTTP_FIELD_TOO_LONG = -30405,  /* one header field line over the limit */
	UR_EHTTP_TOO_MANY_FIELDS = -30406, /* more header fields than the limit or the array */
	UR_EHTTP_HEADER_TOO_BIG = -30407,  /* the header section over its total limit */
	UR_EHTTP_OBSFOLD = -30408,         /* obsolete line folding (RFC 9112 §5.2) */
	UR_EHTTP_NEWLINE = -30409,         /* a bare CR or LF: lines must end in CRLF */
	UR_EHTTP_CLEN = -30410,            /* invalid or conflicting Content-Length */
	UR_EHTTP_TE = -30411,              /* invalid or unknown Transfer-Encoding */
	UR_EHTTP_TE_CLEN = -30412, /* a request with both Transfer-Encoding and Content-Length */
	UR_EHTTP_CHUNK = -30413,   /* malformed chunk size line or chunk end */
	UR_EHTTP_CHUNK_OVERFLOW = -30414, /* chunk size does not fit 64 bits */
	UR_EHTTP_CHUNK_EXT = -30415,      /* chunk size line (extensions) over the limit */
	UR_EHTTP_TRAILER = -30416,        /* malformed trailer section or over its limit */
	UR_EHTTP_HNAME = -30417,          /* a header field name that is not a token */
	UR_EHTTP_HVALUE = -30418,         /* a header field value with a control byte */
	UR_EHTTP_METHOD = -30419,         /* a request method that is not a token */
	UR_EHTTP_TARGET = -30420,         /* an empty request target or one with invalid bytes */

	/* HTTP client (urio/http.h): -30440 .. -30499 */
	UR_EHTTP_RESERVED = -30440, /* a custom header the client owns (Content-Length...) */
	UR_EHTTP_TOO_MANY_REDIRECTS = -30441, /* more redirects than allowed (or a loop) */
	UR_EHTTP_REDIRECT_LOCATION = -30442,  /* a redirect without a usable Location */
	UR_EHTTP_INSECURE_REDIRECT = -30443,  /* a redirect from https to http */
	UR_EHTTP_TRUNCATED = -30444,          /* the connection ended before the body did */
	UR_EHTTP_BODY_TOO_BIG = -30445,       /* the body (or decoded body) is over the maximum */
	UR_EHTTP_DECODE = -30446,             /* corrupt gzip/deflate content */
	UR_EHTTP_CODING = -30447,             /* a content or transfer coding the client lacks */
	UR_EHTTP_TOO_MANY_1XX = -30448,       /* too many interim (1xx) responses */
	UR_EHTTP_BODY_SOURCE = -30449,        /* the request body ended before its length */
	UR_EHTTP_NO_RESPONSE = -30450,   /* the server closed the connection without a response */
	UR_EHTTP_CLIENT_CLOSED = -30451, /* the client was closed */

	/* streams (urio/stream.h): -30500 .. -30599 */
	UR_EINCOMPLETE = -30500, /* the stream ended before the bytes asked for */
	UR_ELIMIT = -30501,      /* no delimiter within the limit; nothing was consumed */
};

/*
 * Returns a static, human-readable description of @code: "success" for code >= 0, the C library's
 * description for -errno values, urio's own text for codes in the reserved range, and
 * "unknown error" otherwise. Thread-safe; the string must not be freed.
 *
 * One exception: -ETIMEDOUT reads "timed out", not the C library's "Connection timed out".
 * urio returns it when one of its deadlines passes (a timeout scope, ur_deadline(), a stream's
 * deadline, ur_wait_for()), with or without a connection; the kernel returns it too when TCP
 * gives up on a peer (SYN retries, keep-alive, TCP_USER_TIMEOUT). The code does not say which.
 */
UR_EXPORT const char *ur_strerror(int code);

/*
 * Returns the symbolic name of @code ("ECONNRESET", "UR_ELOOPCLOSED"), "OK" for code >= 0, or
 * "UNKNOWN". Thread-safe; the string must not be freed.
 */
UR_EXPORT const char *ur_strerror_name(int code);

#ifdef __cplusplus
}
#endif

#endif
