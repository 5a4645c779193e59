/*
 * scramplus.c - SCRAM-SHA-256-PLUS against odmrd with libsasl2's OWN client side (t-60).
 *
 *   scramplus PORT CAFILE USER PASS [--tls12] [--wrong-binding] [--binding-name NAME]
 *
 * Why: channel binding ties the SASL exchange to this TLS session, so a man in the middle who
 * terminates TLS cannot relay the authentication. Proving that odmrd hands libsasl2 the right
 * binding needs a client that nobody on this project wrote: libsasl2's SCRAM plugin, given the
 * binding data this client's own TLS library (OpenSSL) computes - tls-exporter (RFC 9266) under
 * TLS 1.3, tls-unique (RFC 5929) under 1.2. --wrong-binding flips one octet: odmrd must refuse.
 * Does STARTTLS (verifying the server against CAFILE), EHLO, AUTH SCRAM-SHA-256-PLUS. Prints the
 * EHLO's AUTH line, the binding type used and the final AUTH reply code, e.g.
 *   auth=CRAM-MD5 SCRAM-SHA-256-PLUS SCRAM-SHA-256 binding=tls-exporter mech=SCRAM-SHA-256-PLUS result=235
 * Exit 0 when the exchange ran to a final reply (whatever the code), 1 on set-up errors.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *user, *pass;
static int fd = -1;
static SSL *ssl;
static char rbuf[16384];
static size_t rlen;

static int cb_user(void *ctx, int id, const char **result, unsigned *len)
{
	(void)ctx;
	(void)id;
	*result = user;
	if (len)
		*len = (unsigned)strlen(user);
	return SASL_OK;
}

static int cb_pass(sasl_conn_t *conn, void *ctx, int id, sasl_secret_t **psecret)
{
	static sasl_secret_t *s;
	(void)conn;
	(void)ctx;
	(void)id;
	size_t n = strlen(pass);
	s = malloc(sizeof *s + n);
	s->len = n;
	memcpy(s->data, pass, n);
	*psecret = s;
	return SASL_OK;
}

/* Send LINE CRLF, over TLS once it is up. */
static void put(const char *line)
{
	char b[16384];
	int n = snprintf(b, sizeof b, "%s\r\n", line);
	if (ssl ? SSL_write(ssl, b, n) != n : write(fd, b, (size_t)n) != n) {
		fprintf(stderr, "scramplus: write failed\n");
		exit(1);
	}
}

/* One reply line into LINE; returns the code of a complete (last) line, -1 on EOF. */
static int get(char *line, size_t len)
{
	for (;;) {
		char *e = memchr(rbuf, '\n', rlen);
		if (e != NULL) {
			size_t n = (size_t)(e - rbuf) + 1;
			snprintf(line, len, "%.*s", (int)(n > 1 && e[-1] == '\r' ? n - 2 : n - 1), rbuf);
			memmove(rbuf, rbuf + n, rlen - n);
			rlen -= n;
			return atoi(line) * (line[3] == '-' ? -1 : 1);
		}
		int r = ssl ? SSL_read(ssl, rbuf + rlen, (int)(sizeof rbuf - rlen)) :
			(int)read(fd, rbuf + rlen, sizeof rbuf - rlen);
		if (r <= 0)
			return -1;
		rlen += (size_t)r;
	}
}

/* A whole reply; returns its code, leaves its last line in LINE. */
static int reply(char *line, size_t len, char *auth, size_t authlen)
{
	int code;
	while ((code = get(line, len)) < -1 || code == 0)
		if (auth && !strncmp(line + 4, "AUTH ", 5))
			snprintf(auth, authlen, "%s", line + 9);
	if (auth && !strncmp(line + 4, "AUTH ", 5))
		snprintf(auth, authlen, "%s", line + 9);
	return code;
}

int main(int argc, char **argv)
{
	int tls12 = 0, wrong = 0;
	const char *cbname = NULL;
	char line[16384], auth[512] = "-";

	if (argc < 5) {
		fprintf(stderr, "usage: scramplus PORT CAFILE USER PASS [--tls12] [--wrong-binding] [--binding-name N]\n");
		return 1;
	}
	user = argv[3];
	pass = argv[4];
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--tls12"))
			tls12 = 1;
		else if (!strcmp(argv[i], "--wrong-binding"))
			wrong = 1;
		else if (!strcmp(argv[i], "--binding-name") && i + 1 < argc)
			cbname = argv[++i];
	}
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
		return 1;
	if (reply(line, sizeof line, NULL, 0) != 220)
		return 1;
	put("EHLO client.test");
	reply(line, sizeof line, NULL, 0);
	put("STARTTLS");
	if (reply(line, sizeof line, NULL, 0) != 220)
		return 1;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(ctx, argv[2], NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (tls12)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	SSL_set1_host(ssl, "provider.test");
	if (SSL_connect(ssl) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	put("EHLO client.test");
	reply(line, sizeof line, auth, sizeof auth);

	/* The binding as this side of the TLS session sees it. */
	unsigned char cb[64];
	size_t cblen;
	const char *name;
	if (SSL_version(ssl) == TLS1_3_VERSION) {
		name = "tls-exporter";
		cblen = 32;
		if (SSL_export_keying_material(ssl, cb, cblen, "EXPORTER-Channel-Binding", 24, NULL, 0, 0) != 1)
			return 1;
	} else {
		name = "tls-unique";   /* the client's Finished: the first in a full handshake */
		cblen = SSL_get_finished(ssl, cb, sizeof cb);
	}
	if (wrong)
		cb[0] ^= 0x55;
	sasl_channel_binding_t binding = { cbname ? cbname : name, 1, cblen, cb };
	static sasl_callback_t cbs[] = {
		{ SASL_CB_AUTHNAME, (int (*)(void))(void (*)(void))cb_user, NULL },
		{ SASL_CB_USER, (int (*)(void))(void (*)(void))cb_user, NULL },
		{ SASL_CB_PASS, (int (*)(void))(void (*)(void))cb_pass, NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	sasl_conn_t *conn;
	const char *out, *mech;
	unsigned outlen;
	char b64[16384], dec[16384];
	unsigned b64len, declen;

	if (sasl_client_init(cbs) != SASL_OK ||
	    sasl_client_new("smtp", "provider.test", NULL, NULL, NULL, 0, &conn) != SASL_OK ||
	    sasl_setprop(conn, SASL_CHANNEL_BINDING, &binding) != SASL_OK)
		return 1;
	int rc = sasl_client_start(conn, "SCRAM-SHA-256-PLUS", NULL, &out, &outlen, &mech);
	if (rc != SASL_OK && rc != SASL_CONTINUE) {
		fprintf(stderr, "sasl_client_start: %s\n", sasl_errdetail(conn));
		return 1;
	}
	/*
	 * libsasl2's client reports the base name even when its first message carries the binding
	 * ("p=..." GS2 flag); the mechanism on the wire must then be the -PLUS one (RFC 5802 6).
	 */
	char wire[64];
	snprintf(wire, sizeof wire, "%s%s", mech, strstr(mech, "-PLUS") || outlen < 2 || out[0] != 'p' ? "" : "-PLUS");
	sasl_encode64(out, outlen, b64, sizeof b64, &b64len);
	snprintf(line, sizeof line, "AUTH %s %.16000s", wire, outlen ? b64 : "=");
	put(line);
	int code;
	while ((code = reply(line, sizeof line, NULL, 0)) == 334) {
		if (sasl_decode64(line + 4, (unsigned)strlen(line + 4), dec, sizeof dec, &declen) != SASL_OK)
			return 1;
		rc = sasl_client_step(conn, dec, declen, NULL, &out, &outlen);
		if (rc != SASL_OK && rc != SASL_CONTINUE) {
			/* e.g. the server's signature did not verify: cancel */
			put("*");
			continue;
		}
		sasl_encode64(out ? out : "", outlen, b64, sizeof b64, &b64len);
		put(outlen ? b64 : "");
	}
	put("QUIT");
	printf("auth=%s binding=%s mech=%s result=%d\n", auth, cbname ? cbname : name, wire, code);
	sasl_dispose(&conn);
	sasl_client_done();
	return 0;
}
