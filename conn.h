/*
 * conn.h - the customer's connection, plain or TLS: read, write, pending, deadlines. The session
 * loop (odmrd.c) and the reversed state (relay.c) use only this, so neither knows which it has.
 * Deadlines are absolute, in net_now_ms() milliseconds.
 */
#ifndef ODMRD_CONN_H
#define ODMRD_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tls.h"

struct conn;

/*
 * The customer's socket (IN and OUT may be the same descriptor). Both are made non-blocking and
 * TCP_NODELAY is set on OUT: replies are small and each waits for the customer's next command, so
 * Nagle would hold them for the customer's delayed ACK (~40 ms each).
 */
struct conn *conn_new(int in, int out);
/* The descriptor to poll for the customer's input. */
int conn_fd(const struct conn *c);
/*
 * Up to LEN octets, waiting no later than DEADLINE (0: do not wait). >0 octets, 0 the customer
 * closed, -1 with errno ETIMEDOUT (deadline), EAGAIN (DEADLINE 0, nothing yet) or another error.
 */
ssize_t conn_read(struct conn *c, void *buf, size_t len, long long deadline);
/* All of BUF by DEADLINE, or -1 (the customer is gone or stopped reading). */
int conn_write(struct conn *c, const void *buf, size_t len, long long deadline);
/* 1 if the customer has sent octets not yet read (here or inside TLS), or has hung up. */
int conn_pending(struct conn *c);
/*
 * From now on every line written goes out as its own TLS record (plain: no effect). fetchmail
 * --ssl reads one line from its TLS library and then waits on the raw socket, so lines that share
 * a record with an earlier one stall it (shared/notes/fetchmail.md). The records are collected in
 * one buffer and written with few system calls.
 */
void conn_set_line_records(struct conn *c, bool on);
/*
 * Set up a TLS server session with OPS/CFG (parses the certificate and key), before anything is
 * promised to the client: 0, or -1 and ERR (a bad or mismatched certificate or key); the
 * connection stays plain and usable then.
 */
int conn_tls_prepare(struct conn *c, const struct tls_ops *ops, const struct tls_cfg *cfg,
		     char *err, size_t errlen);
/*
 * Run the prepared handshake by DEADLINE. 0: TLS from now on; -1: the session is over (ERR says
 * why: timeout, the client's garbage or silence, a handshake alert).
 */
int conn_starttls(struct conn *c, long long deadline, char *err, size_t errlen);
/* The established TLS session, or NULL while plain. */
const struct tls_info *conn_tls(const struct conn *c);
/* Channel binding of the TLS session (see tls.h); -1 when plain or unavailable. */
int conn_channel_binding(struct conn *c, const char **name, unsigned char *data, size_t *len);
/* End TLS politely (close_notify, bounded by DEADLINE) and free; the descriptors stay open. */
void conn_free(struct conn *c, long long deadline);

#endif
