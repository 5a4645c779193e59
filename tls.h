/*
 * tls.h - the narrow interface between odmrd and its TLS module (odmrd-tls.so, tls_wolfssl.c).
 *
 * odmrd never links a TLS library: a plaintext session must not map or relocate one (linking
 * libssl alone cost a plaintext process 2.2 ms). When a session starts TLS (STARTTLS, or
 * tls_wrappermode), tls_load.c dlopen()s the module and takes its one symbol, odmrd_tls_ops.
 * Certificate, key, CA and ticket-key bytes are read by odmrd while it still has its start-up
 * privileges and handed over as memory; the module never opens a file. The module does no socket
 * I/O either: it calls back into conn.c (struct tls_io), which owns the descriptors and deadlines.
 */
#ifndef ODMRD_TLS_H
#define ODMRD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#define TLS_API_VERSION 1
#define TLS_SYMBOL "odmrd_tls_ops"
#define TLS_TICKET_KEY_LEN 32   /* one ticket key: 32 random octets (AES-256-GCM) */
#define TLS_TICKET_KEYS_MAX 4   /* the current key, then older ones still accepted */
#define TLS_CB_MAX 64           /* channel-binding data: exporter 32, tls-unique <= 48 */

/* Results of the module's calls besides octet counts. */
#define TLS_WANT_READ (-1)   /* call again when the socket is readable */
#define TLS_WANT_WRITE (-2)  /* flush what the module wrote, then call again */
#define TLS_ERR (-3)         /* fatal: the session is over (reason: ops->error) */

/* One file as read before the privilege drop. */
struct tls_blob {
	const unsigned char *data;
	size_t len;
};

/* Everything the module gets from the configuration, as memory. */
struct tls_cfg {
	struct tls_blob cert;     /* PEM: the server certificate, then its chain */
	struct tls_blob key;      /* PEM: its private key (RSA or ECDSA) */
	struct tls_blob ca;       /* PEM: CAs for client certificates; len 0: none asked for */
	const unsigned char (*ticket_keys)[TLS_TICKET_KEY_LEN];  /* first one encrypts */
	size_t n_ticket_keys;     /* 0: no session tickets */
};

/*
 * Raw octets to and from the peer, provided by conn.c. recv: >0 octets, 0 EOF, TLS_WANT_READ,
 * TLS_ERR. send: octets taken (all or part), TLS_WANT_WRITE when nothing fits now, TLS_ERR.
 */
struct tls_io {
	void *ctx;
	int (*recv)(void *ctx, unsigned char *buf, size_t len);
	int (*send)(void *ctx, const unsigned char *buf, size_t len);
};

/* What a finished handshake established (for EHLO, SASL and the summary log line). */
struct tls_info {
	char version[16];        /* "TLSv1.3" */
	char cipher[64];         /* "TLS_AES_128_GCM_SHA256" */
	unsigned bits;           /* symmetric key bits: SASL_SSF_EXTERNAL */
	bool resumed;            /* a ticket was accepted: no full handshake */
	bool peer_cert;          /* the client sent a certificate */
	bool peer_verified;      /* ... and it verified against tls_ca_file (chain, dates) */
	char peer_id[256];       /* its identity (subject CN) when verified, else "" */
	char peer_why[128];      /* why it did not verify, when it did not */
};

struct tls_srv;

struct tls_ops {
	unsigned api;  /* TLS_API_VERSION */
	/* Library name and version, for logs. */
	const char *(*library)(void);
	/* Parse CFG, check the key matches the certificate; 0, or -1 and a reason in ERR. */
	int (*check)(const struct tls_cfg *cfg, char *err, size_t errlen);
	/* A server session over IO; NULL and a reason in ERR (bad certificate or key, no memory). */
	struct tls_srv *(*server_new)(const struct tls_cfg *cfg, const struct tls_io *io,
				      char *err, size_t errlen);
	/* Drive the handshake: 0 done, TLS_WANT_READ/WRITE, TLS_ERR. */
	int (*handshake)(struct tls_srv *t);
	/* Application data: >0 octets, 0 the peer closed (close_notify or EOF), TLS_WANT_*, TLS_ERR. */
	int (*read)(struct tls_srv *t, void *buf, size_t len);
	/* Encrypt BUF (<= 16384 octets) as ONE record: LEN, TLS_WANT_*, TLS_ERR. */
	int (*write)(struct tls_srv *t, const void *buf, size_t len);
	/* Decrypted octets held inside the module, not yet returned by read. */
	size_t (*pending)(struct tls_srv *t);
	void (*info)(struct tls_srv *t, struct tls_info *out);
	/*
	 * Channel binding for SASL (-PLUS mechanisms): tls-exporter (RFC 9266) under TLS 1.3,
	 * tls-unique (RFC 5929) under TLS 1.2. 0 with NAME and DATA set, -1 if unavailable.
	 */
	int (*channel_binding)(struct tls_srv *t, const char **name, unsigned char *data, size_t *len);
	/* Queue a close_notify alert (written through io.send). */
	void (*shutdown)(struct tls_srv *t);
	/* The last error, loggable (never key material). */
	const char *(*error)(struct tls_srv *t);
	void (*free)(struct tls_srv *t);
};

#endif
