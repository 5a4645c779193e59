/*
 * tls_wolfssl.c - odmrd's TLS module (odmrd-tls.so): tls.h's operations on wolfSSL.
 *
 * wolfSSL was chosen by measurement (bench/tls/, README "TLS"): in the inetd shape every session is
 * a new process, and wolfSSL's start-up plus a full ECDSA handshake costs about a third of
 * OpenSSL 3.0's. odmrd dlopen()s this module only when a session starts TLS.
 *
 * Trusts the configuration as memory (tls_cfg), nothing the peer sends. Never opens a file or a
 * socket: octets come and go through the caller's tls_io. Invariants: TLS 1.2 or 1.3 only, AEAD
 * suites with forward secrecy only, no compression, no renegotiation (not built into Debian's
 * wolfSSL), SNI ignored; a client certificate that does not verify never yields an identity;
 * session tickets are sealed with the admin's ticket keys (AES-256-GCM) so another odmrd process
 * can open them, and are never issued to a session that presented a client certificate (its
 * identity is not in the ticket; with tls_ca_file set, TLS 1.2 sessions get no ticket at all).
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/ec.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tls.h"

/*
 * TLS 1.3's three suites; for TLS 1.2 ECDHE with AES-GCM or ChaCha20-Poly1305 only (the Mozilla
 * "intermediate" list without DHE: forward secrecy and AEAD for every client made this decade,
 * and no finite-field DH to compute per process).
 */
#define TLS_CIPHERS "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                    \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                    \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Ticket lifetime, seconds (Postfix's smtpd_tls_session_cache_timeout default). */
#define TLS_TICKET_LIFETIME 3600
#define TLS_GCM_NONCE 12
#define TLS_GCM_TAG 16

struct tls_srv {
	WOLFSSL_CTX *ctx;
	WOLFSSL *ssl;
	struct tls_io io;
	const unsigned char (*keys)[TLS_TICKET_KEY_LEN];
	size_t nkeys;
	unsigned char key_names[TLS_TICKET_KEYS_MAX][WOLFSSL_TICKET_NAME_SZ];
	bool cert_seen;       /* the client sent a certificate */
	bool cert_bad;        /* ... and some part of its chain did not verify */
	char cert_id[256];    /* subject CN of the client's own certificate */
	char cert_why[128];
	char err[256];
};

static int tls_inited;

/* Library name and version. */
static const char *tls_library(void)
{
	static char v[64];

	snprintf(v, sizeof v, "wolfSSL %s", wolfSSL_lib_version());
	return v;
}

/* wolfSSL_Init once per process. */
static int tls_init(void)
{
	if (!tls_inited && wolfSSL_Init() != WOLFSSL_SUCCESS)
		return -1;
	tls_inited = 1;
	return 0;
}

/* A loggable text for wolfSSL error code E, prefixed by WHAT. */
static void tls_errtext(char *buf, size_t len, const char *what, int e)
{
	char t[WOLFSSL_MAX_ERROR_SZ];

	wolfSSL_ERR_error_string_n((unsigned long)(e < 0 ? -e : e), t, sizeof t);
	/* wolfSSL's text is "error:NNN:reason"; keep the reason. */
	const char *r = strrchr(t, ':');
	snprintf(buf, len, "%s: %s (%d)", what, r && r[1] ? r + 1 : t, e);
}

/* Sign a test message with PRIV and verify it with PUB (~80 M instructions in wolfSSL's compat). */
static bool tls_sign_verify(WOLFSSL_EVP_PKEY *priv, WOLFSSL_EVP_PKEY *pub)
{
	static const char msg[] = "odmrd key check";
	unsigned char sig[512];
	size_t siglen = sizeof sig;
	WOLFSSL_EVP_MD_CTX *sign = wolfSSL_EVP_MD_CTX_new(), *verify = wolfSSL_EVP_MD_CTX_new();
	bool ok = sign != NULL && verify != NULL &&
		  wolfSSL_EVP_DigestSignInit(sign, NULL, wolfSSL_EVP_sha256(), NULL, priv) == 1 &&
		  wolfSSL_EVP_DigestSignUpdate(sign, msg, sizeof msg) == 1 &&
		  wolfSSL_EVP_DigestSignFinal(sign, sig, &siglen) == 1 &&
		  wolfSSL_EVP_DigestVerifyInit(verify, NULL, wolfSSL_EVP_sha256(), NULL, pub) == 1 &&
		  wolfSSL_EVP_DigestVerifyUpdate(verify, msg, sizeof msg) == 1 &&
		  wolfSSL_EVP_DigestVerifyFinal(verify, sig, siglen) == 1;

	wolfSSL_EVP_MD_CTX_free(sign);
	wolfSSL_EVP_MD_CTX_free(verify);
	return ok;
}

/*
 * True if CFG's private key is an Ed25519 key. (wolfSSL's OpenSSL layer parses neither an
 * Ed25519 key nor a certificate for one, so the key itself is decoded.)
 */
static bool tls_key_is_ed25519(const struct tls_cfg *cfg)
{
	unsigned char der[256];
	int len = wc_KeyPemToDer(cfg->key.data, (int)cfg->key.len, der, (int)sizeof der, NULL);
	ed25519_key k;
	word32 idx = 0;
	bool yes = false;

	if (len > 0 && wc_ed25519_init(&k) == 0) {
		yes = wc_Ed25519PrivateKeyDecode(der, &idx, &k, (word32)len) == 0;
		wc_ed25519_free(&k);
	}
	memset(der, 0, sizeof der);
	return yes;
}

/*
 * True if the private key in CFG belongs to the (first) certificate. wolfSSL's own check compares
 * an RSA key's modulus and an Ed25519 key's public key (derived from the private one) with the
 * certificate's, but only the type of an ECDSA key, so for ECDSA compare the public point the key
 * file carries with the certificate's (cheap); a key file without its public point gets a
 * signature test instead (costly: some 80 M instructions).
 */
static bool tls_key_matches(WOLFSSL_CTX *ctx, const struct tls_cfg *cfg)
{
	/* Ed25519 first: the OpenSSL layer below would parse the files only to fail (0.3 M). */
	if (tls_key_is_ed25519(cfg))
		return wolfSSL_CTX_check_private_key(ctx) == WOLFSSL_SUCCESS;

	bool ok = false;
	WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(cfg->cert.data, (int)cfg->cert.len,
								WOLFSSL_FILETYPE_PEM);
	WOLFSSL_EVP_PKEY *pub = x ? wolfSSL_X509_get_pubkey(x) : NULL;
	WOLFSSL_BIO *b = wolfSSL_BIO_new_mem_buf(cfg->key.data, (int)cfg->key.len);
	WOLFSSL_EVP_PKEY *priv = b ? wolfSSL_PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	if (pub != NULL && wolfSSL_EVP_PKEY_base_id(pub) != EVP_PKEY_EC) {
		/* RSA: wolfSSL compares the modulus. (For ECDSA it would spend 5 M instructions on a
		 * curve check of the key alone.) */
		ok = wolfSSL_CTX_check_private_key(ctx) == WOLFSSL_SUCCESS;
	} else if (pub != NULL && priv != NULL) {
		WOLFSSL_EC_KEY *ec1 = wolfSSL_EVP_PKEY_get1_EC_KEY(pub), *ec2 = wolfSSL_EVP_PKEY_get1_EC_KEY(priv);
		const WOLFSSL_EC_POINT *p1 = ec1 ? wolfSSL_EC_KEY_get0_public_key(ec1) : NULL;
		const WOLFSSL_EC_POINT *p2 = ec2 ? wolfSSL_EC_KEY_get0_public_key(ec2) : NULL;
		const WOLFSSL_EC_GROUP *g = ec1 ? wolfSSL_EC_KEY_get0_group(ec1) : NULL;
		if (p1 != NULL && p2 != NULL && g != NULL)
			ok = wolfSSL_EC_POINT_cmp(g, p1, p2, NULL) == 0;
		else
			ok = tls_sign_verify(priv, pub);
		wolfSSL_EC_KEY_free(ec1);
		wolfSSL_EC_KEY_free(ec2);
	}
	wolfSSL_EVP_PKEY_free(priv);
	wolfSSL_BIO_free(b);
	wolfSSL_EVP_PKEY_free(pub);
	wolfSSL_X509_free(x);
	return ok;
}

/* A server context with our policy, certificate, key and CAs; NULL and ERR on failure. */
static WOLFSSL_CTX *tls_ctx(const struct tls_cfg *cfg, char *err, size_t errlen)
{
	int rc;

	if (tls_init() < 0) {
		snprintf(err, errlen, "wolfSSL_Init failed");
		return NULL;
	}
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (ctx == NULL) {
		snprintf(err, errlen, "wolfSSL_CTX_new failed");
		return NULL;
	}
	if (wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(ctx, TLS_CIPHERS) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the TLS version or cipher policy");
		goto fail;
	}
	wolfSSL_CTX_set_options(ctx, WOLFSSL_OP_CIPHER_SERVER_PREFERENCE);
	/*
	 * TLS 1.3 key shares: X25519, P-256, P-384, in this order (TLS 1.2 ECDHE takes the client's
	 * pick among wolfSSL's curves, all of 256 bits or more).
	 */
	int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1 };
	if (wolfSSL_CTX_set_groups(ctx, groups, (int)(sizeof groups / sizeof groups[0])) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot set the TLS key exchange groups");
		goto fail;
	}
	rc = wolfSSL_CTX_use_certificate_chain_buffer(ctx, cfg->cert.data, (long)cfg->cert.len);
	if (rc != WOLFSSL_SUCCESS) {
		tls_errtext(err, errlen, "tls_cert_file is not a usable PEM certificate", rc);
		goto fail;
	}
	rc = wolfSSL_CTX_use_PrivateKey_buffer(ctx, cfg->key.data, (long)cfg->key.len, WOLFSSL_FILETYPE_PEM);
	if (rc != WOLFSSL_SUCCESS) {
		tls_errtext(err, errlen, "tls_key_file is not a usable PEM private key", rc);
		goto fail;
	}
	if (!tls_key_matches(ctx, cfg)) {
		snprintf(err, errlen, "tls_key_file does not match the certificate in tls_cert_file");
		goto fail;
	}
	if (cfg->ca.len > 0) {
		rc = wolfSSL_CTX_load_verify_buffer(ctx, cfg->ca.data, (long)cfg->ca.len, WOLFSSL_FILETYPE_PEM);
		if (rc != WOLFSSL_SUCCESS) {
			tls_errtext(err, errlen, "tls_ca_file holds no usable PEM certificate", rc);
			goto fail;
		}
	}
	return ctx;
fail:
	wolfSSL_CTX_free(ctx);
	return NULL;
}

/* See tls.h. */
static int tls_check(const struct tls_cfg *cfg, char *err, size_t errlen)
{
	WOLFSSL_CTX *ctx = tls_ctx(cfg, err, errlen);

	if (ctx == NULL)
		return -1;
	wolfSSL_CTX_free(ctx);
	return 0;
}

/* wolfSSL's receive callback: octets from the peer through the caller. */
static int tls_cb_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_srv *t = ctx;
	(void)ssl;
	int n = t->io.recv(t->io.ctx, (unsigned char *)buf, (size_t)sz);

	if (n > 0)
		return n;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_CONN_CLOSE;
	return n == TLS_WANT_READ ? WOLFSSL_CBIO_ERR_WANT_READ : WOLFSSL_CBIO_ERR_GENERAL;
}

/* wolfSSL's send callback: records into the caller's output buffer. */
static int tls_cb_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
	struct tls_srv *t = ctx;
	(void)ssl;
	int n = t->io.send(t->io.ctx, (const unsigned char *)buf, (size_t)sz);

	if (n > 0)
		return n;
	return n == TLS_WANT_WRITE ? WOLFSSL_CBIO_ERR_WANT_WRITE : WOLFSSL_CBIO_ERR_GENERAL;
}

/*
 * Client certificate check: record the verdict and the leaf's identity, never fail the handshake
 * (an unverified certificate only means no EXTERNAL; other mechanisms still work).
 */
static int tls_cb_verify(int ok, WOLFSSL_X509_STORE_CTX *store)
{
	WOLFSSL *ssl = wolfSSL_X509_STORE_CTX_get_ex_data(store, wolfSSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_srv *t = ssl ? wolfSSL_get_ex_data(ssl, 0) : NULL;

	WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);

	int derlen = 0;

	if (t == NULL)
		return 0;
	if (x == NULL || wolfSSL_X509_get_der(x, &derlen) == NULL || derlen <= 0)
		return 1;   /* called without a certificate: the client sent none */
	t->cert_seen = true;
	/* Its identity is not carried in a ticket: a certificate session gets none. */
	wolfSSL_no_ticket_TLSv13(ssl);
	if (!ok) {
		int e = wolfSSL_X509_STORE_CTX_get_error(store);
		/* wolfSSL reports date failures with codes its own table has no text for. */
		const char *why = e == X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD ? "certificate has expired" :
			e == X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD ? "certificate is not yet valid" :
			wolfSSL_X509_verify_cert_error_string(e);
		t->cert_bad = true;
		if (t->cert_why[0] == '\0' && why != NULL && strncmp(why, "unknown", 7) != 0)
			snprintf(t->cert_why, sizeof t->cert_why, "%s", why);
		else if (t->cert_why[0] == '\0')
			tls_errtext(t->cert_why, sizeof t->cert_why, "certificate", e);
	}
	if (wolfSSL_X509_STORE_CTX_get_error_depth(store) == 0) {
		WOLFSSL_X509_NAME *n = wolfSSL_X509_get_subject_name(x);
		if (n == NULL || wolfSSL_X509_NAME_get_text_by_NID(n, NID_commonName, t->cert_id,
								   (int)sizeof t->cert_id) <= 0)
			t->cert_id[0] = '\0';
	}
	return 1;
}

/* Name of ticket key K: its SHA-256 under a label, shortened (never the key itself). */
static void tls_key_name(const unsigned char *k, unsigned char name[WOLFSSL_TICKET_NAME_SZ])
{
	unsigned char in[16 + TLS_TICKET_KEY_LEN], h[WC_SHA256_DIGEST_SIZE];

	memcpy(in, "odmrd ticket id ", 16);
	memcpy(in + 16, k, TLS_TICKET_KEY_LEN);
	wc_Sha256Hash(in, sizeof in, h);
	memcpy(name, h, WOLFSSL_TICKET_NAME_SZ);
	memset(in, 0, sizeof in);
}

/*
 * Seal or open one session ticket with the admin's keys: AES-256-GCM, the key name and IV as
 * additional data, the tag in the MAC field. A ticket under an older key is accepted and replaced.
 */
static int tls_cb_ticket(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
			 unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
			 int enc, unsigned char *ticket, int inlen, int *outlen, void *ctx)
{
	struct tls_srv *t = ctx;
	unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];
	size_t k = 0;
	Aes aes;
	int rc;

	(void)ssl;
	if (enc) {
		/* The kernel's generator: a DRBG of our own costs a health test per process. */
		if (getrandom(iv, WOLFSSL_TICKET_IV_SZ, 0) != WOLFSSL_TICKET_IV_SZ)
			return WOLFSSL_TICKET_RET_FATAL;
		memcpy(key_name, t->key_names[0], WOLFSSL_TICKET_NAME_SZ);
	} else {
		while (k < t->nkeys && memcmp(key_name, t->key_names[k], WOLFSSL_TICKET_NAME_SZ) != 0)
			k++;
		if (k == t->nkeys)
			return WOLFSSL_TICKET_RET_REJECT;   /* a key long retired: full handshake */
	}
	memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
	if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
		return WOLFSSL_TICKET_RET_FATAL;
	rc = wc_AesGcmSetKey(&aes, t->keys[k], TLS_TICKET_KEY_LEN);
	if (rc == 0 && enc) {
		memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
		rc = wc_AesGcmEncrypt(&aes, ticket, ticket, (word32)inlen, iv, TLS_GCM_NONCE, mac,
				      TLS_GCM_TAG, aad, sizeof aad);
	} else if (rc == 0) {
		static const unsigned char zero[WOLFSSL_TICKET_MAC_SZ - TLS_GCM_TAG];
		rc = memcmp(mac + TLS_GCM_TAG, zero, sizeof zero) != 0 ? -1 :
			wc_AesGcmDecrypt(&aes, ticket, ticket, (word32)inlen, iv, TLS_GCM_NONCE, mac,
					 TLS_GCM_TAG, aad, sizeof aad);
	}
	wc_AesFree(&aes);
	if (rc != 0)
		return enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
	*outlen = inlen;
	return enc || k == 0 ? WOLFSSL_TICKET_RET_OK : WOLFSSL_TICKET_RET_CREATE;
}

/* See tls.h. */
static void tls_free(struct tls_srv *t)
{
	if (t == NULL)
		return;
	if (t->ssl != NULL)
		wolfSSL_free(t->ssl);
	if (t->ctx != NULL)
		wolfSSL_CTX_free(t->ctx);
	free(t);
}

/* See tls.h. */
static struct tls_srv *tls_server_new(const struct tls_cfg *cfg, const struct tls_io *io, char *err,
				      size_t errlen)
{
	struct tls_srv *t = calloc(1, sizeof *t);

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->io = *io;
	if ((t->ctx = tls_ctx(cfg, err, errlen)) == NULL)
		goto fail;
	if (cfg->ca.len > 0)
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, tls_cb_verify);
	else
		wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);
	if (cfg->n_ticket_keys > 0) {
		t->keys = cfg->ticket_keys;
		t->nkeys = cfg->n_ticket_keys < TLS_TICKET_KEYS_MAX ? cfg->n_ticket_keys : TLS_TICKET_KEYS_MAX;
		for (size_t i = 0; i < t->nkeys; i++)
			tls_key_name(t->keys[i], t->key_names[i]);
		wolfSSL_CTX_set_TicketEncCb(t->ctx, tls_cb_ticket);
		wolfSSL_CTX_set_TicketEncCtx(t->ctx, t);
		wolfSSL_CTX_set_TicketHint(t->ctx, TLS_TICKET_LIFETIME);
		wolfSSL_CTX_set_timeout(t->ctx, TLS_TICKET_LIFETIME);
		wolfSSL_CTX_set_num_tickets(t->ctx, 1);
		/*
		 * A TLS 1.2 ticket is promised in the ServerHello, before we know whether the client
		 * will present a certificate: with client certificates in use, TLS 1.2 is not resumed.
		 */
		if (cfg->ca.len > 0)
			wolfSSL_CTX_NoTicketTLSv12(t->ctx);
	} else {
		/* Without shared keys a ticket could only be opened by this process: none at all. */
		wolfSSL_CTX_NoTicketTLSv12(t->ctx);
		wolfSSL_CTX_no_ticket_TLSv13(t->ctx);
	}
	if ((t->ssl = wolfSSL_new(t->ctx)) == NULL) {
		snprintf(err, errlen, "wolfSSL_new failed");
		goto fail;
	}
	wolfSSL_set_ex_data(t->ssl, 0, t);
	wolfSSL_SSLSetIORecv(t->ssl, tls_cb_recv);
	wolfSSL_SSLSetIOSend(t->ssl, tls_cb_send);
	wolfSSL_SetIOReadCtx(t->ssl, t);
	wolfSSL_SetIOWriteCtx(t->ssl, t);
	return t;
fail:
	tls_free(t);
	return NULL;
}

/* Map a failed wolfSSL call's result RC onto tls.h's codes, keeping a reason for the log. */
static int tls_result(struct tls_srv *t, int rc, const char *what)
{
	int e = wolfSSL_get_error(t->ssl, rc);

	switch (e) {
	case WOLFSSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case WOLFSSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case WOLFSSL_ERROR_ZERO_RETURN:
	case SOCKET_PEER_CLOSED_E:
		snprintf(t->err, sizeof t->err, "%s: the client closed the connection", what);
		return 0;
	default:
		tls_errtext(t->err, sizeof t->err, what, e);
		return TLS_ERR;
	}
}

/* See tls.h. */
static int tls_handshake(struct tls_srv *t)
{
	int rc = wolfSSL_accept(t->ssl);

	if (rc == WOLFSSL_SUCCESS)
		return 0;
	rc = tls_result(t, rc, "handshake");
	return rc == 0 ? TLS_ERR : rc;
}

/* See tls.h. */
static int tls_read(struct tls_srv *t, void *buf, size_t len)
{
	int rc = wolfSSL_read(t->ssl, buf, (int)len);

	return rc > 0 ? rc : tls_result(t, rc, "read");
}

/* See tls.h. */
static int tls_write(struct tls_srv *t, const void *buf, size_t len)
{
	int rc = wolfSSL_write(t->ssl, buf, (int)len);

	if (rc > 0)
		return rc;
	rc = tls_result(t, rc, "write");
	return rc == 0 ? TLS_ERR : rc;
}

/* See tls.h. */
static size_t tls_pending(struct tls_srv *t)
{
	int n = wolfSSL_pending(t->ssl);
	return n > 0 ? (size_t)n : 0;
}

/* See tls.h. */
static void tls_info(struct tls_srv *t, struct tls_info *out)
{
	WOLFSSL_CIPHER *c = wolfSSL_get_current_cipher(t->ssl);
	int bits = 0;

	memset(out, 0, sizeof *out);
	snprintf(out->version, sizeof out->version, "%s", wolfSSL_get_version(t->ssl));
	/* The IANA name (TLS_AES_128_GCM_SHA256), as other servers log it. */
	int cs = wolfSSL_get_current_cipher_suite(t->ssl);
	const char *iana = cs >= 0 ? wolfSSL_get_cipher_name_iana_from_suite((unsigned char)(cs >> 8),
									      (unsigned char)cs) : NULL;
	snprintf(out->cipher, sizeof out->cipher, "%s", iana ? iana : c ? wolfSSL_CIPHER_get_name(c) : "?");
	if (c != NULL)
		wolfSSL_CIPHER_get_bits(c, &bits);
	out->bits = bits > 0 ? (unsigned)bits : 0;
	out->resumed = wolfSSL_session_reused(t->ssl) == 1;
	out->peer_cert = t->cert_seen;
	out->peer_verified = t->cert_seen && !t->cert_bad && t->cert_id[0] != '\0';
	if (out->peer_verified)
		snprintf(out->peer_id, sizeof out->peer_id, "%s", t->cert_id);
	else if (t->cert_seen)
		snprintf(out->peer_why, sizeof out->peer_why, "%s",
			 t->cert_why[0] ? t->cert_why : "no subject CN");
}

/* See tls.h. */
static int tls_channel_binding(struct tls_srv *t, const char **name, unsigned char *data, size_t *len)
{
	if (wolfSSL_version(t->ssl) == TLS1_3_VERSION) {
		/* RFC 9266: 32 octets, label EXPORTER-Channel-Binding, no context. */
		static const char label[] = "EXPORTER-Channel-Binding";
		if (*len < 32 || wolfSSL_export_keying_material(t->ssl, data, 32, label, sizeof label - 1,
								NULL, 0, 0) != WOLFSSL_SUCCESS)
			return -1;
		*name = "tls-exporter";
		*len = 32;
		return 0;
	}
	/* RFC 5929: the first Finished of the handshake - the client's, or ours when resumed. */
	size_t n = wolfSSL_session_reused(t->ssl) == 1 ? wolfSSL_get_finished(t->ssl, data, *len) :
		wolfSSL_get_peer_finished(t->ssl, data, *len);
	if (n == 0 || n > *len)
		return -1;
	*name = "tls-unique";
	*len = n;
	return 0;
}

/* See tls.h. */
static void tls_shutdown(struct tls_srv *t)
{
	wolfSSL_shutdown(t->ssl);
}

/* See tls.h. */
static const char *tls_error(struct tls_srv *t)
{
	return t->err[0] ? t->err : "unknown TLS error";
}

/* The one symbol odmrd looks up (the module is built with hidden visibility otherwise). */
__attribute__((visibility("default"))) const struct tls_ops odmrd_tls_ops = {
	.api = TLS_API_VERSION,
	.library = tls_library,
	.check = tls_check,
	.server_new = tls_server_new,
	.handshake = tls_handshake,
	.read = tls_read,
	.write = tls_write,
	.pending = tls_pending,
	.info = tls_info,
	.channel_binding = tls_channel_binding,
	.shutdown = tls_shutdown,
	.error = tls_error,
	.free = tls_free,
};
