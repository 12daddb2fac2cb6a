/* SPDX-License-Identifier: MIT */
/*
 * proto/tls_cert.c - certificates made in memory for tests and demos (ur_tls_cert_generate).
 *
 * ECDSA P-256 keys, because generating them takes well under a millisecond where RSA-2048 takes
 * tens; SHA-256 signatures; X.509 v3 with the extensions a verifier checks: basicConstraints
 * (CA:TRUE on the CA), keyUsage, extendedKeyUsage serverAuth + clientAuth on the leaf, the
 * subjectAltName, and subject/authority key identifiers so chain building is unambiguous.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <urio.h>

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-256");
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* "DNS:localhost,IP:127.0.0.1,IP:::1" from the names, or -EINVAL. */
static int san_value(const char *const *names, size_t n, char *out, size_t cap)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ip[16];
		const char *name = names[i];
		bool is_ip =
		    inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
		if (!*name || strpbrk(name, ", \t\r\n"))
			return -EINVAL;
		int w = snprintf(out + off, cap - off, "%s%s:%s", i ? "," : "",
		                 is_ip ? "IP" : "DNS", name);
		if (w < 0 || (size_t)w >= cap - off)
			return -EINVAL;
		off += (size_t)w;
	}
	return 0;
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, int64_t nb, int64_t na)
{
	X509 *x = X509_new();
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto fail;
	BN_free(bn);
	bn = NULL;
	if (!X509_set_version(x, 2) || !X509_gmtime_adj(X509_getm_notBefore(x), (long)nb) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), (long)na) || !X509_set_pubkey(x, key))
		goto fail;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"urio test",
	                                -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
	                                0))
		goto fail;
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static char *to_pem(int (*write)(BIO *, const void *), const void *obj)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	if (b && write(b, obj) == 1) {
		long n = BIO_get_mem_data(b, &p);
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

static int write_x509(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x);
}

static int write_key(BIO *b, const void *k)
{
	return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

int ur_tls_cert_generate(struct ur_tls_cert *out, const struct ur_tls_cert_opts *o)
{
	static const char *const default_names[] = {"localhost", "127.0.0.1", "::1"};
	static const struct ur_tls_cert_opts defaults;
	EVP_PKEY *ca_key = NULL, *key = NULL;
	X509 *ca = NULL, *leaf = NULL;
	char san[2048];
	int r = -ENOMEM;

	if (!out)
		return -EINVAL;
	*out = (struct ur_tls_cert){0};
	if (!o)
		o = &defaults;
	const char *const *names = o->names ? o->names : default_names;
	size_t n = o->names ? o->n_names : 3;
	if (n == 0 || san_value(names, n, san, sizeof(san)) < 0)
		return -EINVAL;
	int64_t nb = o->not_before ? o->not_before : -3600;
	int64_t na = o->not_after ? o->not_after : 86400;
	bool self = o->flags & UR_TLS_CERT_SELF_SIGNED;

	key = new_key();
	leaf = key ? new_cert(key, o->cn ? o->cn : names[0], nb, na) : NULL;
	if (!leaf)
		goto done;
	if (self) {
		ca = leaf;
		ca_key = key;
	} else {
		ca_key = new_key();
		ca = ca_key ? new_cert(ca_key, "urio test CA", -3600, 30 * 86400) : NULL;
		if (!ca || !X509_set_issuer_name(ca, X509_get_subject_name(ca)) ||
		    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
		    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
		    add_ext(ca, ca, NID_subject_key_identifier, "hash") < 0 ||
		    !X509_sign(ca, ca_key, EVP_sha256()))
			goto fail;
	}
	r = UR_ETLS;
	if (!X509_set_issuer_name(leaf, X509_get_subject_name(ca)) ||
	    add_ext(leaf, ca, NID_basic_constraints, self ? "critical,CA:TRUE" : "CA:FALSE") < 0 ||
	    add_ext(leaf, ca, NID_key_usage,
	            self ? "critical,digitalSignature,keyCertSign" : "critical,digitalSignature") <
	        0 ||
	    add_ext(leaf, ca, NID_ext_key_usage, "serverAuth,clientAuth") < 0 ||
	    add_ext(leaf, ca, NID_subject_key_identifier, "hash") < 0 ||
	    (!self && add_ext(leaf, ca, NID_authority_key_identifier, "keyid:always") < 0) ||
	    (!(o->flags & UR_TLS_CERT_NO_SAN) &&
	     add_ext(leaf, ca, NID_subject_alt_name, san) < 0) ||
	    !X509_sign(leaf, ca_key, EVP_sha256()))
		goto fail;
	r = -ENOMEM;
	out->ca_pem = to_pem(write_x509, ca);
	out->cert_pem = to_pem(write_x509, leaf);
	out->key_pem = to_pem(write_key, key);
	if (!out->ca_pem || !out->cert_pem || !out->key_pem) {
		ur_tls_cert_free(out);
		goto fail;
	}
	r = 0;
	goto done;
fail:
	ERR_clear_error();
done:
	if (!self) {
		X509_free(ca);
		EVP_PKEY_free(ca_key);
	}
	X509_free(leaf);
	EVP_PKEY_free(key);
	return r;
}

void ur_tls_cert_free(struct ur_tls_cert *c)
{
	if (!c)
		return;
	free(c->ca_pem);
	free(c->cert_pem);
	free(c->key_pem);
	*c = (struct ur_tls_cert){0};
}
