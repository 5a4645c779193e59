/*
 * odmrd.c - main: one RFC 2645 session on the socket inetd gave us as fd 0/1.
 *
 * Reads the config, checks TCP wrappers when asked, drops privileges, then runs the session core
 * over the connection layer (conn.h) with deadline-bounded reads and writes until it closes or
 * hands the connection to the MTA relay.
 * It is exec'd for every connection, so start-up is kept to what every connection needs: odmrd
 * links only libsasl2 and libc; libsasl2's plugins are loaded at the first EHLO (auth_ready), GDBM
 * and jansson when a session first uses them (dynlib.c); the default hostname asks no resolver.
 * TLS (STARTTLS, or tls_wrappermode from the first octet): the certificate, key and ticket keys
 * are read while we still have our start-up privileges; the TLS module is loaded only when this
 * session starts TLS, so a plaintext session never maps a TLS library.
 * Trusts: the config file and the command line (root's). Invariants: nothing is written to fd 2
 * (under xinetd it is the socket); every wait has a deadline; a startup failure still answers 421
 * (in wrapper mode over TLS when TLS itself works, else the connection is closed, logged); TLS
 * that was configured never silently falls back to plaintext.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <tcpd.h>
#include <unistd.h>

#include "admin.h"
#include "auth.h"
#include "config.h"
#include "conn.h"
#include "dynlib.h"
#include "handoff.h"
#include "log.h"
#include "net.h"
#include "proc.h"
#include "session.h"
#include "tls_load.h"

struct io_ctx {
	struct conn *conn;
	unsigned write_timeout;  /* seconds */
	const struct config *cf;
	struct tls_files *tls;   /* read at start-up; NULL: this session cannot start TLS */
	const char *peer;
	bool prepared;           /* the TLS session is set up (conn_tls_prepare) */
};

/* Write everything or give up after the write timeout: a client that never reads cannot hold us. */
static int io_write(void *vctx, const char *buf, size_t len)
{
	struct io_ctx *c = vctx;

	return conn_write(c->conn, buf, len, net_now_ms() + (long long)c->write_timeout * 1000);
}

/* Tarpit and greeting pause. */
static void io_pause(void *vctx, unsigned ms)
{
	(void)vctx;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Has the client sent octets we have not read, or already hung up? Either way: no handoff. */
static int io_pending(void *vctx)
{
	struct io_ctx *c = vctx;

	return conn_pending(c->conn);
}

/* Load the TLS module and parse the certificate and key for this connection; logs why not. */
static int io_tls_setup(struct io_ctx *c, char *err, size_t errlen)
{
	if (c->prepared)
		return 0;
	const struct tls_ops *ops = tls_module(c->cf, err, errlen);
	if (c->tls->ticket_warning[0] != '\0')
		log_msg(LOG_WARNING, "%s", c->tls->ticket_warning);
	if (ops == NULL || conn_tls_prepare(c->conn, ops, &c->tls->cfg, err, errlen) < 0)
		return -1;
	c->prepared = true;
	return 0;
}

/* session_io.tls_prepare: STARTTLS may answer 220 (or 454 when TLS cannot start). */
static int io_tls_prepare(void *vctx)
{
	struct io_ctx *c = vctx;
	char err[512];

	if (io_tls_setup(c, err, sizeof err) < 0) {
		log_msg(LOG_ERR, "STARTTLS from %s: TLS not available: %s", c->peer, err);
		return -1;
	}
	return 0;
}

/* Run the prepared handshake (bounded by idle_timeout) and tell the core; -1: session over. */
static int io_tls_start(struct session *s, struct io_ctx *c)
{
	char err[512], esc[LOG_ESC_SIZE];
	unsigned char cb[TLS_CB_MAX];
	size_t cblen = sizeof cb;
	const char *cbname = NULL;

	if (conn_starttls(c->conn, net_now_ms() + (long long)c->cf->idle_timeout * 1000, err, sizeof err) < 0) {
		log_msg(LOG_NOTICE, "TLS handshake failed from %s: %s", c->peer,
			log_esc_text(err, strlen(err), esc, sizeof esc));
		session_set_result(s, "tls-failed");
		return -1;
	}
	if (conn_channel_binding(c->conn, &cbname, cb, &cblen) < 0)
		cbname = NULL;
	struct sess_tls t = { conn_tls(c->conn), cbname, cb, cbname ? cblen : 0 };
	session_tls_started(s, &t);
	explicit_bzero(cb, sizeof cb);
	return 0;
}

/* "ip" and "ip;port" (libsasl2's form) for one end of the socket; false if fd 0 is not one. */
static int sock_name(int fd, int peer, char *ip, size_t iplen, char *ipport, size_t iplen2)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	int port;

	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &sl) : getsockname(fd, (struct sockaddr *)&ss, &sl)) < 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &sin->sin_addr, ip, (socklen_t)iplen);
		port = ntohs(sin->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		/*
		 * A dual-stack listener (xinetd "flags = IPv6", systemd [::]:366 without BindIPv6Only)
		 * hands IPv4 customers over as ::ffff:a.b.c.d; logs, SASL and the admin's greps want
		 * a.b.c.d, the form the same customer has on an IPv4-only listener.
		 */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
			inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], ip, (socklen_t)iplen);
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, (socklen_t)iplen);
		port = ntohs(sin6->sin6_port);
	} else {
		return 0;
	}
	snprintf(ipport, iplen2, "%s;%d", ip, port);
	return 1;
}

/* Read and dispatch until the session closes or hands off; enforces idle and session deadlines. */
static enum sess_action run_session(struct session *s, const struct config *cf, struct io_ctx *ioc)
{
	struct conn *c = ioc->conn;
	long long deadline = net_now_ms() + (long long)cf->session_timeout * 1000;
	char buf[4096];

	for (;;) {
		long long idle = net_now_ms() + (long long)cf->idle_timeout * 1000;
		int by_idle = idle < deadline;
		ssize_t n = conn_read(c, buf, sizeof buf, by_idle ? idle : deadline);
		if (n < 0 && errno == ETIMEDOUT)
			return session_timeout(s, by_idle);
		if (n <= 0)
			return session_eof(s);
		enum sess_action a = session_input(s, buf, (size_t)n);
		if (a == SA_STARTTLS && io_tls_start(s, ioc) < 0)
			return SA_CLOSE;
		if (a != SA_CONTINUE && a != SA_STARTTLS)
			return a;
	}
}

/*
 * hosts.allow/hosts.deny for daemon "odmrd", with the peer's address and (looked-up) name, as tcpd
 * does: 1 allowed, 0 refused, -1 libwrap could not be loaded.
 */
static int wrappers_allow(void)
{
	/*
	 * libwrap is loaded only here (tcp_wrappers = yes): linking it pulls libnsl, libtirpc and the
	 * Kerberos libraries into every exec, relocated even when wrappers are off.
	 */
	static struct {
		void *handle;
		__typeof__(request_init) *init;
		__typeof__(sock_host) *from;
		__typeof__(hosts_access) *access;
	} w;
	static const struct dynlib_sym syms[] = {
		{ "request_init", (void **)&w.init },
		{ "sock_host", (void **)&w.from },
		{ "hosts_access", (void **)&w.access },
	};
	char err[256];
	if (dynlib_load("libwrap.so.0", &w.handle, syms, sizeof syms / sizeof syms[0], err, sizeof err) != 0)
		return -1;
	struct request_info req;

	w.init(&req, RQ_DAEMON, "odmrd", RQ_FILE, 0, 0);
	w.from(&req);
	return w.access(&req);
}

/* Print usage where someone can see it: a terminal, never the socket. */
static void usage(void)
{
	if (isatty(2))
		fprintf(stderr, "usage: odmrd [-f config] [-o key=value]... [-t | -n | -V]\n");
	log_msg(LOG_ERR, "usage: odmrd [-f config] [-o key=value]... [-t | -n | -V]");
}

/* One connection on fd 0/1 (or -t/-n/-V from a shell): start-up, the session, the reversed state. */
int main(int argc, char **argv)
{
	const char *cfpath = CF_DEFAULT_PATH;
	struct config cf;
	char err[512] = "", peer[64] = "unknown", peerport[80], local[64], localport[80];
	const char *startup_err = NULL;
	struct auth *auth = NULL;
	int opt, admin = 0;
	/* -o key=value: a setting over the file's, e.g. tls_wrappermode=yes for a second service */
	char *opts[32];
	size_t nopts = 0;

	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "f:o:ntV")) != -1) {
		switch (opt) {
		case 'f':
			cfpath = optarg;
			break;
		case 'o':
			if (nopts == sizeof opts / sizeof opts[0]) {
				usage();
				return 2;
			}
			opts[nopts++] = optarg;
			break;
		case 'n':
		case 't':
		case 'V':
			admin = opt;  /* a shell, not inetd: see admin.c */
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc) {
		usage();
		return 2;
	}
	if (admin)
		return admin_main(admin, cfpath, opts, nopts);
	/* Under inetd fd 2 is the customer's socket: libraries (libdb under sasldb) must not talk there. */
	int tty = isatty(2);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!tty && null >= 0 && null != 2)
		dup2(null, 2);
	if (null > 2)
		close(null);
	log_open(LOG_MAIL, NULL);
	if (cf_load_opts(cfpath, opts, nopts, &cf, err, sizeof err) != 0) {
		startup_err = err;
		/* The admin looks where log_file points, if the broken config got that far. */
		if (cf.log_file != NULL) {
			log_close();
			log_open(cf.syslog_facility, cf.log_file);  /* else syslog, saying why */
		}
		/* Nothing of a broken file is used, but the 421 still names the host as configured. */
		char *host = cf.hostname;
		cf.hostname = NULL;
		cf_free(&cf);
		cf_defaults(&cf);
		cf.hostname = host;
	} else if (cf.log_file != NULL || cf.syslog_facility != LOG_MAIL) {
		log_close();
		log_open(cf.syslog_facility, cf.log_file);  /* else syslog, saying why */
	}
	int have_peer = sock_name(0, 1, peer, sizeof peer, peerport, sizeof peerport);
	int have_local = sock_name(0, 0, local, sizeof local, localport, sizeof localport);
	int wrapped = startup_err == NULL && cf.tcp_wrappers ? wrappers_allow() : 1;
	if (wrapped <= 0) {
		snprintf(err, sizeof err, "%s", wrapped < 0 ?
			 "tcp_wrappers = yes but libwrap.so.0 cannot be loaded (package libwrap0)" :
			 "refused by TCP wrappers (hosts.allow/hosts.deny, daemon odmrd)");
		startup_err = err;
	}
	/* Read now: after the privilege drop the key file is out of reach. Parsed when TLS starts. */
	struct tls_files tlsf;
	bool tls_ok = false;
	bool tls_on = cf.tls_cert_file != NULL && (cf.tls_security_level == CF_TLS_MAY ||
						   cf.tls_security_level == CF_TLS_ENCRYPT);
	if (startup_err == NULL && tls_on) {
		if (tls_files_read(&cf, &tlsf, err, sizeof err) < 0)
			startup_err = err;
		else
			tls_ok = true;
	}
	if (startup_err == NULL && proc_privsep(&cf, err, sizeof err) != 0)
		startup_err = err;
	if (startup_err == NULL) {
		auth = auth_open(&cf, have_local ? localport : NULL, have_peer ? peerport : NULL, err, sizeof err);
		if (auth == NULL)
			startup_err = err;
	}
	log_msg(LOG_INFO, "connect from %s", peer);
	/* Non-blocking, so a client that stops reading meets our write timeout instead of hanging us. */
	struct conn *conn = conn_new(0, 1);
	if (conn == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return 1;
	}
	struct io_ctx ioc = { conn, cf.idle_timeout, &cf, tls_ok ? &tlsf : NULL, peer, false };
	struct session_io io = { &ioc, io_write, io_pause, io_pending, tls_ok ? io_tls_prepare : NULL };
	struct session *s = session_new(&cf, &io, auth, peer);
	if (s == NULL) {
		log_msg(LOG_ERR, "out of memory");
		return 1;
	}
	enum sess_action a = SA_CONTINUE;
	char tlserr[512];
	/* TLS is certain (wrapper mode, or encrypt): a bad certificate or key is a start-up failure. */
	if (tls_ok && (cf.tls_wrappermode || cf.tls_security_level == CF_TLS_ENCRYPT) &&
	    io_tls_setup(&ioc, tlserr, sizeof tlserr) < 0 && startup_err == NULL)
		startup_err = tlserr;
	if (cf.tls_wrappermode) {
		/* Nothing in plaintext on a TLS port: a client there could only take it for garbage. */
		if (!ioc.prepared) {
			log_msg(LOG_ERR, "cannot serve %s: %s (TLS wrapper mode: closed without a reply)", peer,
				startup_err ? startup_err : "TLS not set up");
			session_set_result(s, "tls-failed");
			a = SA_CLOSE;
		} else if (io_tls_start(s, &ioc) < 0) {
			a = SA_CLOSE;
		}
	}
	if (a == SA_CONTINUE)
		a = session_start(s, startup_err);
	if (a == SA_CONTINUE)
		a = run_session(s, &cf, &ioc);
	if (a == SA_HANDOFF) {
		struct ho_stats st = { 0 };
		handoff_run(session_take_handoff(s), conn, &st);
		session_set_result(s, st.result ? st.result : "done");
		log_msg(LOG_INFO, "reversed peer=%s mta_conns=%u messages=%u rcpts_ok=%u rcpts_failed=%u result=%s",
			peer, st.mta_conns, st.messages, st.rcpts_ok, st.rcpts_failed,
			st.result ? st.result : "done");
	}
	session_free(s);
	conn_free(conn, net_now_ms() + 1000);
	if (tls_ok)
		tls_files_free(&tlsf);
	auth_close(auth);
	cf_free(&cf);
	log_close();
	return 0;
}
