/* SPDX-License-Identifier: MIT */
/*
 * urio/tls.h - TLS (OpenSSL 3) as a stream transport, client and server.
 *
 * A connected stream (urio/stream.h) becomes a TLS stream with ur_tls_client() or
 * ur_tls_server(): they run the handshake and, on success, install TLS as the stream's transport,
 * so ur_stream_read(), _write_all(), _shutdown() and _close() speak TLS from then on. OpenSSL never
 * sees the descriptor: ciphertext moves through a memory BIO and urio's own recv/send, within the
 * stream's deadline (ur_stream_set_deadline), and everything OpenSSL wants to send is sent before
 * the call that produced it returns (TLS 1.3 session tickets arrive and key updates are answered
 * during reads).
 *
 * Client defaults are the safe ones: the system trust store, peer verification, the host name
 * checked against the certificate's subjectAltName only (never the subject CN), SNI (not for IP
 * literals), TLS 1.2 or newer, ALPN "http/1.1", session resumption per host and port.
 * Renegotiation is refused in both roles. See docs/tls.md.
 *
 * End of stream: ur_stream_read() returns 0 only after the peer's close_notify. A peer that
 * closes the connection without one makes reads fail with UR_ETLSTRUNCATED: a caller whose own
 * framing is complete (a Content-Length body fully read) may accept that; anyone else must treat
 * the data as possibly cut short.
 *
 * Errors: UR_ETLS* codes name the class (ur_strerror), and ur_tls_error_text() gives OpenSSL's
 * reason for the last failure on a stream, e.g. "certificate verify failed: self-signed
 * certificate".
 */
#ifndef URIO_TLS_H
#define URIO_TLS_H

#include <stdbool.h>
#include <sys/types.h>
#include "common.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ur_tls_ctx;

/* Protocol versions, with the values of the wire (and of OpenSSL's TLS1_x_VERSION). */
#define UR_TLS_V1_0 0x0301
#define UR_TLS_V1_1 0x0302
#define UR_TLS_V1_2 0x0303
#define UR_TLS_V1_3 0x0304

enum ur_tls_role {
	UR_TLS_CLIENT = 0,
	UR_TLS_SERVER = 1,
};

enum ur_tls_flags {
	/*
	 * Client: accept any certificate for any name (no chain or host name check). Never on by
	 * default; meant for tests and for hosts reached through a channel trusted otherwise.
	 */
	UR_TLS_INSECURE = 1u << 0,
	/* Client: no session resumption (no session cache). */
	UR_TLS_NO_RESUME = 1u << 1,
	/* Server: ask for a client certificate and refuse the handshake without a valid one. */
	UR_TLS_REQUIRE_CLIENT_CERT = 1u << 2,
	/* Client: trust the system store in addition to ca_file / ca_dir / ca_pem. */
	UR_TLS_SYSTEM_TRUST_TOO = 1u << 3,
	/*
	 * Keep a connection's 32 KiB receive buffer (and OpenSSL's record buffers, and the
	 * buffer of ciphertext to send) while it waits for the peer, instead of releasing them
	 * and polling for readability first (the default): one io_uring operation per wait
	 * instead of three and no malloc/free per record, for ~50 KiB more per idle connection
	 * (docs/tls.md). For busy connections: a client's keep-alive pool, a benchmark.
	 */
	UR_TLS_KEEP_BUFFERS = 1u << 4,
};

/*
 * Options of a context. Zero-initialise and set what you need; every pointer is read during
 * ur_tls_ctx_new() only (files are loaded, memory is copied).
 *
 * Trust (clients; servers with UR_TLS_REQUIRE_CLIENT_CERT): the system store, unless ca_file,
 * ca_dir or ca_pem is given, which then replace it (add UR_TLS_SYSTEM_TRUST_TOO to keep it too).
 * Own certificate: a server's (required) or a client's (optional), from a PEM file or PEM text;
 * the certificate file / text may hold the chain after the leaf.
 */
struct ur_tls_opts {
	unsigned flags; /* enum ur_tls_flags */

	const char *ca_file; /* PEM file of trusted certificates */
	const char *ca_dir;  /* directory of hashed PEM certificates (c_rehash) */
	const char *ca_pem;  /* PEM text of trusted certificates, NUL-terminated */

	const char *cert_file, *key_file; /* own certificate (chain) and private key, PEM files */
	const char *cert_pem, *key_pem;   /* ... or as PEM text, NUL-terminated */

	int min_version; /* UR_TLS_V1_x; 0 = UR_TLS_V1_2 */
	int max_version; /* UR_TLS_V1_x; 0 = the newest OpenSSL knows */

	/*
	 * ALPN protocols, comma-separated in order of preference ("h2,http/1.1"). NULL: "http/1.1"
	 * for clients, none for servers; "": none. A server picks the first of its own list that
	 * the client offers, and goes on without ALPN if there is none.
	 */
	const char *alpn;

	/* OpenSSL cipher list (TLS 1.2 and below) for special needs; NULL = OpenSSL's default. */
	const char *ciphers;

	/* If not NULL, receives the reason of a failure of ur_tls_ctx_new() (NUL-terminated). */
	char *errbuf;
	size_t errlen;

	uint32_t reserved[4];
};

/*
 * Creates a context for @role with options @o (NULL: defaults; a server needs a certificate). A
 * context is shared by any number of streams, on any threads; it holds the client session cache.
 * Returns 0 and stores it in *@ctx, or UR_ETLSCONFIG (a file or PEM text that does not load, a
 * key that does not match, a bad option; the reason goes to o->errbuf), -EINVAL, -ENOMEM.
 */
UR_EXPORT int ur_tls_ctx_new(struct ur_tls_ctx **ctx, enum ur_tls_role role,
                             const struct ur_tls_opts *o);

/*
 * Drops the caller's reference to @ctx (NULL is ignored). Streams that use it keep it alive until
 * they are closed, so it may be freed while they still run.
 */
UR_EXPORT void ur_tls_ctx_free(struct ur_tls_ctx *ctx);

/*
 * The client handshake over the connected stream @s (a plain stream, nothing read from it yet),
 * for @host: a DNS name (sent as SNI and checked against the certificate's DNS names) or an IP
 * literal, bracketed or not (checked against its IP addresses; no SNI). Task-style: suspends the
 * calling task; bounded by the stream's deadline. Resumes a session of the same host and port if
 * the context has one.
 *
 * Returns 0: TLS is now the stream's transport. On failure TLS stays installed, failed: every
 * further call on @s returns the same error, ur_tls_error_text() tells why, and the caller still
 * owns @s and closes it with ur_stream_close(). Errors: UR_ETLSVERIFY, UR_ETLSHOSTNAME,
 * UR_ETLSVERSION, UR_ETLSHANDSHAKE (any other refusal, garbage from the peer, end of stream during
 * the handshake), -ETIMEDOUT, -ECONNRESET and other -errno from the socket, -ECANCELED,
 * -ENOMEM; -EINVAL (not a plain stream, @ctx not a client context, @host empty or too long),
 * UR_ENOTASK outside a task (nothing changed in these last two cases).
 *
 * The stream must stay at the same address while TLS is installed.
 */
UR_EXPORT int ur_tls_client(struct ur_stream *s, struct ur_tls_ctx *ctx, const char *host);

/* The server handshake over @s, as ur_tls_client() (and its errors) with a server context. */
UR_EXPORT int ur_tls_server(struct ur_stream *s, struct ur_tls_ctx *ctx);

/*
 * Why the last TLS call on @s failed: OpenSSL's reason with urio's class, such as
 * "certificate verify failed: self-signed certificate" or "handshake failed: wrong version
 * number". "" if nothing failed or @s is not a TLS stream. Valid until the next call on @s.
 */
UR_EXPORT const char *ur_tls_error_text(const struct ur_stream *s);

/* The negotiated version (UR_TLS_V1_2, UR_TLS_V1_3...), or -EINVAL if @s is not TLS. */
UR_EXPORT int ur_tls_version(const struct ur_stream *s);

/*
 * The protocol ALPN chose: stores a pointer to it (not NUL-terminated, valid while @s is open)
 * in *@proto and returns its length; 0 if none was negotiated (or @s is not TLS).
 */
UR_EXPORT size_t ur_tls_alpn(const struct ur_stream *s, const char **proto);

/* True if the handshake resumed an earlier session. */
UR_EXPORT bool ur_tls_resumed(const struct ur_stream *s);

/*
 * The OpenSSL SSL object of @s (an SSL *), for what urio does not wrap (the peer's certificate,
 * the cipher). Do not read, write, or shut it down through OpenSSL. NULL if @s is not TLS.
 */
UR_EXPORT void *ur_tls_ssl(const struct ur_stream *s);

/*
 * Certificates for tests and demos, made in memory with OpenSSL: a CA and a leaf it signs (ECDSA
 * P-256, SHA-256), the leaf naming every entry of @names (DNS names and IP literals) in its
 * subjectAltName. Trust ca_pem on the client (struct ur_tls_opts.ca_pem); give cert_pem and
 * key_pem to the server.
 */
struct ur_tls_cert_opts {
	const char *const *names; /* NULL: "localhost", "127.0.0.1", "::1" */
	size_t n_names;
	const char *cn;     /* the leaf's subject CN; NULL: the first name */
	int64_t not_before; /* seconds from now; 0: one hour ago */
	int64_t not_after;  /* seconds from now; 0: one day on (negative: an expired certificate) */
	unsigned flags;     /* enum ur_tls_cert_flags */
	uint32_t reserved[4];
};

enum ur_tls_cert_flags {
	UR_TLS_CERT_SELF_SIGNED = 1u << 0, /* no CA: the leaf signs itself (ca_pem = cert_pem) */
	UR_TLS_CERT_NO_SAN = 1u << 1,      /* the leaf names its host in the subject CN only */
};

struct ur_tls_cert {
	char *ca_pem;   /* the CA's certificate, NUL-terminated */
	char *cert_pem; /* the leaf's certificate */
	char *key_pem;  /* the leaf's private key (PKCS#8) */
};

/*
 * Makes a CA and a leaf as @o says (NULL: defaults) into *@out, whose strings the caller frees
 * with ur_tls_cert_free(). Returns 0, -EINVAL (a name that is neither a DNS name nor an IP
 * literal), -ENOMEM or UR_ETLS; on failure *@out holds nothing to free.
 */
UR_EXPORT int ur_tls_cert_generate(struct ur_tls_cert *out, const struct ur_tls_cert_opts *o);
UR_EXPORT void ur_tls_cert_free(struct ur_tls_cert *c);

#ifdef __cplusplus
}
#endif

#endif
