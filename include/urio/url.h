/* SPDX-License-Identifier: MIT */
/*
 * urio/url.h - http and https URLs: parse, normalise, resolve a reference (RFC 3986).
 *
 * Pure functions: no allocation, no I/O, no locale. A struct ur_url is caller-owned and holds the
 * normalised URL text itself (href), so it can be copied with memcpy and outlives its input. Every
 * other field describes a part of href (a span) or is a copy made for direct use:
 *
 *   href       "https://user:pw@example.com:8443/a/b?q=1#frag"  (normalised, NUL-terminated)
 *   scheme     UR_URL_HTTPS
 *   user       "user"      password "pw"    (still percent-encoded, as written)
 *   authority  "example.com:8443"           (host[:port] without userinfo: the Host header)
 *   host       "example.com"                (NUL-terminated copy, no brackets: connect, SNI)
 *   port       8443                         (the effective port: 80/443 when none was given)
 *   target     "/a/b?q=1"                   (path + query: the request line's target)
 *   path       "/a/b"       query "q=1"     fragment "frag"
 *
 * Normalisation (RFC 3986 §6.2.2 and §6.2.3): the scheme and host are lowercased; IPv6 literals
 * are validated and written in their RFC 5952 form inside brackets; a port equal to the scheme's
 * default, or an empty port, is dropped; an empty path becomes "/"; "." and ".." segments are
 * removed; percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, the hex digits
 * of every other %XX are uppercased. Bytes a URL may not carry but that are harmless to encode
 * (>= 0x80, and " < > \ ^ ` { | } [ ] outside the host) are percent-encoded.
 *
 * Rejected, each with its own code: control bytes (CR, LF, NUL, any byte < 0x20, DEL), spaces, a
 * '%' not followed by two hex digits (rejected rather than encoded as %25: a lone '%' is ambiguous
 * and usually a bug upstream, guessing could change which resource is fetched), schemes other
 * than http/https, a missing or invalid host (only letters, digits, '-', '.', '_' in a name; no
 * percent-encoding, no internationalised names: pass them in punycode), IPv6 zone identifiers and
 * IPvFuture literals, ports outside 1..65535, and results longer than UR_URL_MAX - 1 bytes.
 */
#ifndef URIO_URL_H
#define URIO_URL_H

#include <stdbool.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The normalised URL's capacity, NUL included; href is at most UR_URL_MAX - 1 bytes. */
#define UR_URL_MAX 8192
/* A host name's capacity, NUL included (a DNS name is at most 253 bytes, 254 with the root dot). */
#define UR_URL_HOST_MAX 256

enum ur_url_scheme {
	UR_URL_HTTP = 1,
	UR_URL_HTTPS = 2,
};

/* A part of href: href + off, len bytes; len == 0 when the part is absent or empty. */
struct ur_url_span {
	uint16_t off;
	uint16_t len;
};

/* flags */
#define UR_URL_IPV6       0x01u /* the host is an IPv6 literal (authority has it in brackets) */
#define UR_URL_USERINFO   0x02u /* a userinfo ("user[:password]@") was present */
#define UR_URL_PASSWORD   0x04u /* the userinfo had a ':' (password may still be empty) */
#define UR_URL_QUERY      0x08u /* a '?' was present (query may still be empty) */
#define UR_URL_FRAGMENT   0x10u /* a '#' was present (fragment may still be empty) */
#define UR_URL_PORT_GIVEN 0x20u /* a non-default port is written in href */

/* Read-only after a successful ur_url_parse()/ur_url_resolve(). About 8.5 KiB. */
struct ur_url {
	enum ur_url_scheme scheme;
	uint16_t port;  /* effective port, never 0 */
	uint16_t flags; /* UR_URL_* above */
	struct ur_url_span user, password, authority, target, path, query, fragment;
	uint16_t href_len;
	char host[UR_URL_HOST_MAX];
	char href[UR_URL_MAX];
};

/*
 * Parses the absolute http or https URL @s (@len bytes, need not be NUL-terminated; may contain
 * no NUL) into @u, normalised as described above.
 * Returns 0, or:
 *   UR_EURL_SCHEME   no scheme, or one other than http/https, or no "//" after it
 *   UR_EURL_CTRL     a control byte: CR, LF, NUL, any other byte below 0x20, or DEL
 *   UR_EURL_SPACE    a space (send it as %20)
 *   UR_EURL_HOST     an empty or invalid host name
 *   UR_EURL_IPV6     a malformed IPv6 literal, a zone identifier or an IPvFuture literal
 *   UR_EURL_PORT     a port with non-digits, 0, or above 65535
 *   UR_EURL_PERCENT  a '%' not followed by two hex digits
 *   UR_EURL_TOOLONG  the normalised URL would not fit in UR_URL_MAX - 1 bytes, or the host in
 *                    UR_URL_HOST_MAX - 1
 * On failure @u's contents are unspecified. @s is not referenced after the call.
 */
UR_EXPORT int ur_url_parse(struct ur_url *u, const char *s, size_t len);

/*
 * Resolves the URI reference @ref (@len bytes; absolute, network-path "//host/..", absolute-path,
 * relative-path, query-only or fragment-only) against @base, by RFC 3986 §5.2 (strict: a
 * reference with a scheme is absolute, so "http:g" is parsed as it stands and fails), and
 * normalises the result into @out. This is what a client does with a redirect's Location. The
 * fragment is the reference's; RFC 9110 §10.2.2's inheritance of the original fragment when
 * Location has none is the caller's choice (UR_URL_FRAGMENT tells whether there is one).
 * @out must not be @base (-EINVAL). Uses about UR_URL_MAX bytes of stack.
 * Returns 0, or any code ur_url_parse() returns for the resolved URL (UR_EURL_SCHEME when the
 * reference names a scheme other than http/https).
 */
UR_EXPORT int ur_url_resolve(struct ur_url *out, const struct ur_url *base, const char *ref,
                             size_t len);

/*
 * True when @a and @b have the same origin (RFC 6454): scheme, host and effective port. Two URLs
 * of one origin can share a pooled connection; a redirect to another origin must drop
 * credentials (Authorization, cookies, userinfo).
 */
UR_EXPORT bool ur_url_same_origin(const struct ur_url *a, const struct ur_url *b);

/*
 * Writes the origin of @u, "scheme://host:port" with the port always present (a key for a
 * connection pool), NUL-terminated, into @buf of @cap bytes.
 * Returns the length written (without the NUL), or -ENOSPC when @cap is too small (then @buf
 * holds an empty string if @cap > 0).
 */
UR_EXPORT int ur_url_origin(const struct ur_url *u, char *buf, size_t cap);

/* A part of @u's href as a pointer (not NUL-terminated; use the span's len). */
static inline const char *ur_url_part(const struct ur_url *u, struct ur_url_span s)
{
	return u->href + s.off;
}

#ifdef __cplusplus
}
#endif

#endif
