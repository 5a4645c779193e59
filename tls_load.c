/*
 * tls_load.c - the configured TLS files read into memory before the privilege drop, and the TLS
 * module (odmrd-tls.so) loaded only for a session that starts TLS.
 *
 * Trusts the configuration (root's) and the module installed at tls_module (root's). Reads bytes
 * only: parsing costs, so it happens when TLS starts, in the module. Invariants: a plaintext
 * session never maps the module or its TLS library; key material is wiped before it is freed and
 * never logged; a ticket key file that others could read is not used.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls_load.h"

#define TLS_FILE_MAX (1 << 20)   /* a certificate chain or CA bundle is far smaller */

/* Read all of PATH (at most TLS_FILE_MAX octets) into a fresh buffer; -1 with errno. */
static int tls_slurp(const char *path, struct tls_blob *b, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	unsigned char *buf = NULL;
	size_t len = 0;

	if (fd < 0)
		return -1;
	int e = fstat(fd, st) < 0 ? errno : !S_ISREG(st->st_mode) ? EINVAL :
		st->st_size > TLS_FILE_MAX ? EFBIG : 0;
	if (e != 0) {
		close(fd);
		errno = e;
		return -1;
	}
	buf = malloc((size_t)st->st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, (size_t)st->st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0 || (len += (size_t)n) > (size_t)st->st_size)
			break;
	}
	close(fd);
	b->data = buf;
	b->len = len;
	return 0;
}

/* Free a blob, wiping it first (the key file is one). */
static void tls_blob_free(struct tls_blob *b)
{
	if (b->data != NULL) {
		explicit_bzero((void *)b->data, b->len);
		free((void *)b->data);
	}
	b->data = NULL;
	b->len = 0;
}

/* Value of hex digit C. */
static int tls_hex(int c)
{
	return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

/*
 * The ticket key file: one key per line, 64 hex digits (32 random octets), the current key
 * first, older keys after it (still accepted, replaced by a fresh ticket); blank lines and '#'
 * comments allowed. Anything else turns tickets off with a warning.
 */
static void tls_ticket_keys(const struct config *cf, struct tls_files *f)
{
	struct tls_blob b = { 0 };
	struct stat st;
	unsigned char (*keys)[TLS_TICKET_KEY_LEN] = NULL;
	size_t n = 0;
	const char *bad = NULL;

	if (tls_slurp(cf->tls_ticket_key_file, &b, &st) < 0) {
		snprintf(f->ticket_warning, sizeof f->ticket_warning, "tls_ticket_key_file %s: %s",
			 cf->tls_ticket_key_file, strerror(errno));
		return;
	}
	if (st.st_mode & 077)
		bad = "readable or writable by others than its owner (chmod 600)";
	else if ((keys = calloc(TLS_TICKET_KEYS_MAX, sizeof *keys)) == NULL)
		bad = "out of memory";
	for (size_t i = 0; bad == NULL && i < b.len;) {
		size_t e = i;
		while (e < b.len && b.data[e] != '\n')
			e++;
		size_t s = i;
		while (s < e && isspace(b.data[s]))
			s++;
		size_t t = e;
		while (t > s && isspace(b.data[t - 1]))
			t--;
		if (s < t && b.data[s] != '#') {
			if (t - s != 2 * TLS_TICKET_KEY_LEN)
				bad = "a line is not 64 hex digits";
			else if (n == TLS_TICKET_KEYS_MAX)
				bad = "more than 4 keys";
			for (size_t k = 0; bad == NULL && k < TLS_TICKET_KEY_LEN; k++) {
				int hi = b.data[s + 2 * k], lo = b.data[s + 2 * k + 1];
				if (!isxdigit(hi) || !isxdigit(lo))
					bad = "a line is not 64 hex digits";
				else
					keys[n][k] = (unsigned char)(tls_hex(hi) << 4 | tls_hex(lo));
			}
			if (bad == NULL)
				n++;
		}
		i = e + 1;
	}
	tls_blob_free(&b);
	if (bad == NULL && n == 0)
		bad = "no key in it";
	if (bad != NULL) {
		snprintf(f->ticket_warning, sizeof f->ticket_warning, "tls_ticket_key_file %s: %s; "
			 "session tickets are off", cf->tls_ticket_key_file, bad);
		if (keys != NULL) {
			explicit_bzero(keys, TLS_TICKET_KEYS_MAX * sizeof *keys);
			free(keys);
		}
		return;
	}
	f->cfg.ticket_keys = (const unsigned char (*)[TLS_TICKET_KEY_LEN])keys;
	f->cfg.n_ticket_keys = n;
}

/* See tls_load.h. */
int tls_files_read(const struct config *cf, struct tls_files *f, char *err, size_t errlen)
{
	const struct { const char *key, *path; struct tls_blob *b; } files[] = {
		{ "tls_cert_file", cf->tls_cert_file, &f->cfg.cert },
		{ "tls_key_file", cf->tls_key_file, &f->cfg.key },
		{ "tls_ca_file", cf->tls_ca_file, &f->cfg.ca },
	};
	struct stat st;

	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (files[i].path == NULL)
			continue;
		if (tls_slurp(files[i].path, files[i].b, &st) < 0) {
			snprintf(err, errlen, "%s %s: %s", files[i].key, files[i].path, strerror(errno));
			tls_files_free(f);
			return -1;
		}
	}
	if (cf->tls_ticket_key_file != NULL)
		tls_ticket_keys(cf, f);
	return 0;
}

/* See tls_load.h. */
void tls_files_free(struct tls_files *f)
{
	tls_blob_free(&f->cfg.cert);
	tls_blob_free(&f->cfg.key);
	tls_blob_free(&f->cfg.ca);
	if (f->cfg.ticket_keys != NULL) {
		explicit_bzero((void *)f->cfg.ticket_keys, TLS_TICKET_KEYS_MAX * TLS_TICKET_KEY_LEN);
		free((void *)f->cfg.ticket_keys);
	}
	f->cfg.ticket_keys = NULL;
	f->cfg.n_ticket_keys = 0;
}

/* See tls_load.h. */
const struct tls_ops *tls_module(const struct config *cf, char *err, size_t errlen)
{
	static const struct tls_ops *ops;

	if (ops != NULL)
		return ops;
	/* RTLD_LOCAL: the module's symbols (and its TLS library's) stay out of our namespace. */
	void *h = dlopen(cf->tls_module, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "tls_module: %s", dlerror());
		return NULL;
	}
	const struct tls_ops *o = dlsym(h, TLS_SYMBOL);
	if (o == NULL || o->api != TLS_API_VERSION) {
		snprintf(err, errlen, "tls_module %s: %s", cf->tls_module,
			 o == NULL ? "no " TLS_SYMBOL " in it" : "built for another odmrd version");
		dlclose(h);
		return NULL;
	}
	ops = o;
	return ops;
}

/* See tls_load.h. */
int tls_check_config(const struct config *cf, char *err, size_t errlen)
{
	struct tls_files f;

	if (cf->tls_cert_file == NULL)
		return 0;
	if (tls_files_read(cf, &f, err, errlen) < 0)
		return -1;
	const struct tls_ops *ops = tls_module(cf, err, errlen);
	int rc = ops == NULL ? -1 : ops->check(&f.cfg, err, errlen);
	if (rc == 0 && f.ticket_warning[0] != '\0') {
		snprintf(err, errlen, "%s", f.ticket_warning);
		rc = -1;
	}
	tls_files_free(&f);
	return rc;
}
