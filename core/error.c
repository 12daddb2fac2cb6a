/* SPDX-License-Identifier: MIT */
/*
 * core/error.c - names and descriptions for every code urio returns.
 */
#include <string.h>

#include "internal.h"

/* errno values are small: the kernel's -errno results stop at -4095 (MAX_ERRNO). */
#define UR__ERRNO_MAX 4095

struct own_error {
	int code;
	const char *name;
	const char *text;
};

/* urio's own codes, every layer's; kept sorted by code, descending, for the reader. */
static const struct own_error own[] = {
    {UR_ELOOPCLOSED, "UR_ELOOPCLOSED", "the event loop is closing"},
    {UR_EWRONGLOOP, "UR_EWRONGLOOP", "the future belongs to another event loop"},
    {UR_ENOTASK, "UR_ENOTASK", "the call must be made from inside a task"},
    {UR_ERINGSIZE, "UR_ERINGSIZE",
     "io_uring queue size out of range (SQ 3..32768 entries, CQ from the SQ size to 65536)"},
    {UR_ENOURING, "UR_ENOURING",
     "io_uring is disabled or not permitted (kernel.io_uring_disabled, seccomp or container "
     "policy), or the kernel lacks it"},
    {UR_ERINGMEM, "UR_ERINGMEM",
     "no memory for the io_uring rings (before Linux 5.12: RLIMIT_MEMLOCK too low, see ulimit -l)"},
    {UR_ENONAME, "UR_ENONAME", "name not found"},
    {UR_ENAMETEMP, "UR_ENAMETEMP", "temporary failure in name resolution"},
    {UR_ENAMEFAIL, "UR_ENAMEFAIL", "non-recoverable failure in name resolution"},
    {UR_EFAMILY, "UR_EFAMILY", "address family not supported for this name"},
    {UR_ERESOLVE, "UR_ERESOLVE", "name resolution failed"},
    {UR_ETLS, "UR_ETLS", "TLS protocol error"},
    {UR_ETLSHANDSHAKE, "UR_ETLSHANDSHAKE", "TLS handshake failed"},
    {UR_ETLSVERIFY, "UR_ETLSVERIFY", "TLS certificate verify failed"},
    {UR_ETLSHOSTNAME, "UR_ETLSHOSTNAME", "TLS certificate does not match the host name"},
    {UR_ETLSVERSION, "UR_ETLSVERSION", "no TLS protocol version accepted by both sides"},
    {UR_ETLSTRUNCATED, "UR_ETLSTRUNCATED",
     "TLS peer closed the connection without close_notify (data may be truncated)"},
    {UR_ETLSCONFIG, "UR_ETLSCONFIG", "TLS configuration error (certificate, key or CA)"},
    {UR_ETLSCLOSED, "UR_ETLSCLOSED", "TLS write after close_notify was sent"},
    {UR_EURL_SCHEME, "UR_EURL_SCHEME", "URL scheme missing or not http/https"},
    {UR_EURL_CTRL, "UR_EURL_CTRL", "control byte (CR, LF, NUL, DEL...) in URL"},
    {UR_EURL_SPACE, "UR_EURL_SPACE", "space in URL"},
    {UR_EURL_HOST, "UR_EURL_HOST", "empty or invalid host in URL"},
    {UR_EURL_IPV6, "UR_EURL_IPV6", "invalid IPv6 literal in URL"},
    {UR_EURL_PORT, "UR_EURL_PORT", "invalid port in URL"},
    {UR_EURL_PERCENT, "UR_EURL_PERCENT", "'%' not followed by two hex digits in URL"},
    {UR_EURL_TOOLONG, "UR_EURL_TOOLONG", "URL too long"},
    {UR_EHTTP_INCOMPLETE, "UR_EHTTP_INCOMPLETE", "HTTP message incomplete: more bytes needed"},
    {UR_EHTTP_SYNTAX, "UR_EHTTP_SYNTAX", "malformed HTTP start line or header field"},
    {UR_EHTTP_VERSION, "UR_EHTTP_VERSION", "unsupported HTTP version"},
    {UR_EHTTP_STATUS, "UR_EHTTP_STATUS", "invalid HTTP status code"},
    {UR_EHTTP_LINE_TOO_LONG, "UR_EHTTP_LINE_TOO_LONG", "HTTP status or request line too long"},
    {UR_EHTTP_FIELD_TOO_LONG, "UR_EHTTP_FIELD_TOO_LONG", "HTTP header field too long"},
    {UR_EHTTP_TOO_MANY_FIELDS, "UR_EHTTP_TOO_MANY_FIELDS", "too many HTTP header fields"},
    {UR_EHTTP_HEADER_TOO_BIG, "UR_EHTTP_HEADER_TOO_BIG", "HTTP header section too big"},
    {UR_EHTTP_OBSFOLD, "UR_EHTTP_OBSFOLD", "obsolete HTTP header line folding"},
    {UR_EHTTP_NEWLINE, "UR_EHTTP_NEWLINE", "bare CR or LF in HTTP message"},
    {UR_EHTTP_CLEN, "UR_EHTTP_CLEN", "invalid or conflicting Content-Length"},
    {UR_EHTTP_TE, "UR_EHTTP_TE", "invalid or unsupported Transfer-Encoding"},
    {UR_EHTTP_TE_CLEN, "UR_EHTTP_TE_CLEN",
     "request with both Transfer-Encoding and Content-Length"},
    {UR_EHTTP_CHUNK, "UR_EHTTP_CHUNK", "malformed chunked encoding"},
    {UR_EHTTP_CHUNK_OVERFLOW, "UR_EHTTP_CHUNK_OVERFLOW", "chunk size too large"},
    {UR_EHTTP_CHUNK_EXT, "UR_EHTTP_CHUNK_EXT", "chunk extension too long"},
    {UR_EHTTP_TRAILER, "UR_EHTTP_TRAILER", "malformed or too large HTTP trailer section"},
    {UR_EHTTP_HNAME, "UR_EHTTP_HNAME", "invalid HTTP header field name"},
    {UR_EHTTP_HVALUE, "UR_EHTTP_HVALUE", "invalid HTTP header field value"},
    {UR_EHTTP_METHOD, "UR_EHTTP_METHOD", "invalid HTTP request method"},
    {UR_EHTTP_TARGET, "UR_EHTTP_TARGET", "invalid HTTP request target"},
    {UR_EHTTP_RESERVED, "UR_EHTTP_RESERVED",
     "Content-Length and Transfer-Encoding are set by the HTTP client, not as custom headers"},
    {UR_EHTTP_TOO_MANY_REDIRECTS, "UR_EHTTP_TOO_MANY_REDIRECTS", "too many HTTP redirects"},
    {UR_EHTTP_REDIRECT_LOCATION, "UR_EHTTP_REDIRECT_LOCATION",
     "HTTP redirect without a valid Location header"},
    {UR_EHTTP_INSECURE_REDIRECT, "UR_EHTTP_INSECURE_REDIRECT",
     "HTTP redirect from https to http refused"},
    {UR_EHTTP_TRUNCATED, "UR_EHTTP_TRUNCATED",
     "the connection ended before the end of the HTTP response body"},
    {UR_EHTTP_BODY_TOO_BIG, "UR_EHTTP_BODY_TOO_BIG",
     "HTTP response body larger than the maximum allowed"},
    {UR_EHTTP_DECODE, "UR_EHTTP_DECODE", "corrupt gzip/deflate HTTP response body"},
    {UR_EHTTP_CODING, "UR_EHTTP_CODING", "unsupported HTTP content or transfer coding"},
    {UR_EHTTP_TOO_MANY_1XX, "UR_EHTTP_TOO_MANY_1XX", "too many interim (1xx) HTTP responses"},
    {UR_EHTTP_BODY_SOURCE, "UR_EHTTP_BODY_SOURCE",
     "the request body's file or callback ended before its declared length"},
    {UR_EHTTP_NO_RESPONSE, "UR_EHTTP_NO_RESPONSE",
     "the server closed the connection without sending a response"},
    {UR_EHTTP_CLIENT_CLOSED, "UR_EHTTP_CLIENT_CLOSED", "the HTTP client was closed"},
    {UR_EINCOMPLETE, "UR_EINCOMPLETE", "the stream ended before the expected bytes"},
    {UR_ELIMIT, "UR_ELIMIT", "no delimiter found within the limit"},
};

static const struct own_error *find_own(int code)
{
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (own[i].code == code)
			return &own[i];
	return NULL;
}

const char *ur_strerror(int code)
{
	if (code >= 0)
		return "success";
	if (code >= UR_ERANGE_MIN && code <= UR_ERANGE_MAX) {
		const struct own_error *e = find_own(code);
		return e ? e->text : "unknown error";
	}
	if (code < -UR__ERRNO_MAX)
		return "unknown error"; /* also keeps -INT_MIN from being computed */
	/*
	 * libc's "Connection timed out" is wrong for most of urio's -ETIMEDOUT: a timeout scope, a
	 * stream's or task's deadline, with or without a connection. "timed out" is true of those
	 * and of the kernel's TCP time-outs alike (urio/error.h).
	 */
	if (code == -ETIMEDOUT)
		return "timed out";
	/* strerrordesc_np (glibc 2.32) is thread-safe and never formats "Unknown error N". */
	const char *s = strerrordesc_np(-code);
	return s ? s : "unknown error";
}

const char *ur_strerror_name(int code)
{
	if (code >= 0)
		return "OK";
	if (code >= UR_ERANGE_MIN && code <= UR_ERANGE_MAX) {
		const struct own_error *e = find_own(code);
		return e ? e->name : "UNKNOWN";
	}
	if (code < -UR__ERRNO_MAX)
		return "UNKNOWN";
	const char *s = strerrorname_np(-code);
	return s ? s : "UNKNOWN";
}
