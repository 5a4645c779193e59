/*
 * tls_load.h - odmrd's side of TLS set-up: the configured files read into memory while odmrd still
 * has its start-up privileges, and the TLS module loaded only when a session starts TLS.
 */
#ifndef ODMRD_TLS_LOAD_H
#define ODMRD_TLS_LOAD_H

#include <stddef.h>

#include "config.h"
#include "tls.h"

/* The bytes of tls_cert_file, tls_key_file, tls_ca_file and tls_ticket_key_file. */
struct tls_files {
	struct tls_cfg cfg;
	char ticket_warning[256];   /* why tickets are off although a key file is set, or "" */
};

/*
 * Read the configured files (call before the privilege drop: the key is typically root-only).
 * Nothing is parsed here. A missing or unreadable certificate, key or CA file is an error (-1,
 * ERR names the key and file); a bad ticket key file only turns tickets off (ticket_warning).
 */
int tls_files_read(const struct config *cf, struct tls_files *f, char *err, size_t errlen);
/* Wipe and free what tls_files_read kept. */
void tls_files_free(struct tls_files *f);
/* dlopen the module at cf->tls_module once; NULL and ERR when it cannot be used. */
const struct tls_ops *tls_module(const struct config *cf, char *err, size_t errlen);
/*
 * For odmrd -t: read the files, load the module, parse the certificate and key and check that
 * they match (and the CA file parses). 0, or -1 and ERR. No-op (0) without tls_cert_file.
 */
int tls_check_config(const struct config *cf, char *err, size_t errlen);

#endif
