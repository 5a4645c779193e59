/*
 * config.h - odmrd.conf: the admin's settings, parsed once per session.
 * Everything here is trusted (root-owned file); values are validated at parse time.
 */
#ifndef ODMRD_CONFIG_H
#define ODMRD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CF_DEFAULT_PATH "/etc/odmrd/odmrd.conf"

enum cf_mta { CF_MTA_NONE, CF_MTA_POSTFIX, CF_MTA_SENDMAIL, CF_MTA_EXEC };
/* tls_security_level; DEFAULT becomes MAY with a certificate, else NONE, when the file is loaded. */
enum cf_tls_level { CF_TLS_DEFAULT, CF_TLS_NONE, CF_TLS_MAY, CF_TLS_ENCRYPT };

/* Where the TLS module is installed (make sets it from LIBDIR); tls_module overrides it. */
#ifndef CF_TLS_MODULE
#define CF_TLS_MODULE "/usr/local/lib/odmrd/odmrd-tls.so"
#endif

/* One "sasl_KEY = value" line, handed to libsasl2 as KEY through SASL_CB_GETOPT. */
struct cf_sasl_opt {
	char *key;
	char *value;
};

struct config {
	char *hostname;           /* greeting/EHLO name; default: gethostname(2), no resolver */
	bool hostname_default;    /* hostname was not configured but filled in */
	char *customer_map;       /* GDBM file: user -> domains */
	char *sasl_realm;         /* user_realm for sasl_server_new; "" = none */
	char *sasl_plugin_dir;    /* SASL_CB_GETPATH; NULL = libsasl2's default */
	struct cf_sasl_opt *sasl_opts;
	size_t n_sasl_opts;

	unsigned max_auth_failures;  /* failed AUTHs before 421 (3) */
	unsigned soft_error_limit;   /* errors before the tarpit starts (3) */
	unsigned hard_error_limit;   /* errors before 421 and close (10) */
	unsigned junk_command_limit; /* NOOP/RSET/repeated EHLO before 421 (100) */
	unsigned error_delay_ms;     /* tarpit delay per error past the soft limit */
	unsigned auth_fail_delay_ms; /* delay before every 535, equal for all causes */
	unsigned greet_pause_ms;     /* wait before the greeting; talkers get 554 */
	unsigned idle_timeout;       /* seconds waiting for one command line (300) */
	unsigned session_timeout;    /* seconds from connect to ATRN reply (600) */
	unsigned atrn_timeout;       /* seconds for one whole customer reply in the reversed state (>= 600) */
	unsigned max_session_time;   /* seconds the whole reversed state may last (4 h) */
	unsigned max_domains;        /* domains one ATRN may name (32) */
	unsigned atrn_interval;      /* seconds a customer must wait between ATRNs (60) */
	bool tcp_wrappers;           /* consult hosts_ctl("odmrd") ourselves */
	int syslog_facility;         /* LOG_MAIL */
	char *log_file;              /* append log lines here instead of syslog */
	char *user;                  /* started as root: drop to this user (mta = sendmail: a root helper stays) */

	enum cf_mta mta;
	char *run_dir;               /* sockets and locks (/run/odmrd) */
	char *mta_user;              /* account the MTA delivers to our sockets as; NULL = per mta */
	char *postqueue;             /* /usr/sbin/postqueue */
	char *postfix_config_dir;    /* postqueue -c DIR; NULL = default instance */
	char *sendmail;              /* /usr/sbin/sendmail */
	char *sendmail_cf;           /* sendmail -C FILE; NULL = default */
	char *exec_command;          /* mta = exec: program and args, no shell */

	/* Read by odmrd-map only: the tables it writes beside the customer map. */
	char *customer_map_group;    /* group of the map (mode 0640); NULL: user's group, else _odmrd */
	char *postfix_transport;     /* Postfix transport table (hash:, via postmap); NULL: none */
	char *postmap;               /* /usr/sbin/postmap */
	char *sendmail_m4;           /* Sendmail .mc fragment (mailers, routes, relaying); NULL: none */
	char *tls_cert_file;         /* PEM certificate (+ chain); NULL: no TLS */
	char *tls_key_file;          /* PEM private key */
	char *tls_ca_file;           /* CAs for client certificates; NULL: none asked for */
	char *tls_ticket_key_file;   /* session ticket keys shared by all processes; NULL: no tickets */
	char *tls_module;            /* odmrd-tls.so */
	enum cf_tls_level tls_security_level;
	bool tls_wrappermode;        /* TLS from the first octet (an "odmrs" port) */
	bool tls_auth_only;          /* AUTH only after TLS */
};

/* Called once per problem cf_parse finds; MSG is "file:line: key: reason". */
typedef void (*cf_report_fn)(void *ctx, const char *msg);
/*
 * Parse PATH over the defaults and report every problem (all lines are read, so a key after a
 * bad line, e.g. hostname for the 421, is still known). Returns the number of problems; with
 * any, *cf must serve only to name the host in a refusal. An unset hostname stays NULL.
 */
unsigned cf_parse(const char *path, struct config *cf, cf_report_fn report, void *ctx);
/*
 * cf_parse keeping only the first problem: -1 and "file:line: key: reason" in err. On success an
 * unset hostname is filled in with the host's name.
 */
int cf_load(const char *path, struct config *cf, char *err, size_t errlen);
/* cf_load, then the N "key = value" settings in OPTS (odmrd -o) over the file's. */
int cf_load_opts(const char *path, char *const *opts, size_t n, struct config *cf, char *err,
		 size_t errlen);
/* cf_parse, then OPTS over the file's settings (each problem reported as "-o key=value: ..."). */
unsigned cf_parse_opts(const char *path, char *const *opts, size_t n, struct config *cf,
		       cf_report_fn report, void *ctx);
/* Print "key = value" for every setting whose value differs from the default (odmrd -n). */
void cf_print_changed(const struct config *cf, FILE *out);
/* Fill *cf with the built-in defaults only. */
void cf_defaults(struct config *cf);
void cf_free(struct config *cf);

#endif
