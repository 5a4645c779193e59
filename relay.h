/*
 * relay.h - carry the MTA's SMTP/LMTP client connections over the one customer connection.
 */
#ifndef ODMRD_RELAY_H
#define ODMRD_RELAY_H

#include <stdbool.h>
#include <sys/types.h>
#include "ho_stats.h"

enum relay_rc {
	RELAY_OK,            /* keep going */
	RELAY_CUSTOMER_LOST, /* customer closed, timed out or broke the protocol: MTA side dropped */
	RELAY_ABORT,         /* unrecoverable mid-message (MTA vanished in DATA): customer dropped */
	RELAY_EXPIRED        /* max_session_time reached: MTA side dropped, nothing more to the customer */
};

struct relay;
struct conn;

/*
 * CUST: the customer's connection; NAME: our EHLO name; TIMEOUT_S: one customer reply, whole,
 * and any other single wait; CAP: net_now_ms() time at which the reversed state ends regardless.
 */
struct relay *relay_new(struct conn *cust, const char *name, unsigned timeout_s, long long cap);
/* Read the customer's greeting (whole, within GREET_S) and do EHLO (HELO if refused). */
enum relay_rc relay_greet(struct relay *r, unsigned greet_s);
/*
 * Serve MTA connections arriving on listening socket FD, bound for DOMAIN (kept, not copied):
 * a RCPT outside DOMAIN gets a 4xx from us. LMTP if the MTA speaks LMTP there.
 */
int relay_listen(struct relay *r, int fd, bool lmtp, const char *domain);
/* Accept MTA connections only from root and UID (SO_PEERCRED); others are closed unanswered. */
void relay_allow_peer(struct relay *r, uid_t uid);
/* Name the customer (SASL user, escaped here) in the per-message log lines. */
void relay_set_user(struct relay *r, const char *user);
/* Wait up to TIMEOUT_MS for one event and handle it. */
enum relay_rc relay_step(struct relay *r, int timeout_ms);
/* From now on relay_step also returns as soon as one of the N descriptors FD is readable (N <= 4). */
void relay_watch(struct relay *r, const int *fd, unsigned n);
/* MTA connections currently open. */
unsigned relay_conns(const struct relay *r);
/* True when no MTA transaction is open and no MTA command waits to be handled. */
bool relay_quiet(const struct relay *r);
/* Milliseconds since the last MTA connection activity. */
long long relay_idle_ms(const struct relay *r);
/* Stop accepting: listeners are closed (the caller unlinks their paths). */
void relay_stop_listening(struct relay *r);
/* QUIT to the customer and wait briefly for 221. */
void relay_quit(struct relay *r);
/* True once a wait ended at the cap (max_session_time). */
bool relay_expired(const struct relay *r);
/* Copy the counters into ST. */
void relay_stats(const struct relay *r, struct ho_stats *st);
/* Close every MTA connection without a reply (the MTA defers) and free. */
void relay_free(struct relay *r);

#endif
