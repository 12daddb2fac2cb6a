/* SPDX-License-Identifier: MIT */
/*
 * core/error.c - names and descriptions for every code urio returns.
 */
#include <string.h>

#include "internal.h"

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
	const char *s = strerrorname_np(-code);
	return s ? s : "UNKNOWN";
}
