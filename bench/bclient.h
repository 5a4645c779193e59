/*
 * bclient.h - the customer's side of the ODMR handshake, shared by the benchmark's C clients
 * (hsclient: handshake timing; sink -C: a C customer for the throughput runs).
 */
#ifndef BCLIENT_H
#define BCLIENT_H

#include <stddef.h>

struct bc_conn {
	int in, out;
	int timeout_ms;     /* per read */
	char buf[8192];
	size_t len;
};

long long bc_now_us(void);
int bc_write(struct bc_conn *c, const char *s);
int bc_reply(struct bc_conn *c, char *last, size_t lastlen);
void bc_wait_eof(struct bc_conn *c);
int bc_cram(const char *user, const char *pass, const char *b64, char *out, size_t outlen);
int bc_login(struct bc_conn *c, const char *user, const char *pass);

#endif
