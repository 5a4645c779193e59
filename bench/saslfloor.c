/*
 * saslfloor.c - the floor plus real SASL: what authenticating costs a per-connection program,
 * for the benchmark only.
 *
 * bench/floor.c answers the handshake with canned replies; this program answers it the same way
 * except that EHLO and AUTH CRAM-MD5 go through odmrd's own auth.c (linked in: libsasl2 with the
 * plugins odmrd lets it load, opened the way odmrd opens them, passwords from the same sasldb;
 * replies through odmrd's net.c).
 * No session core, customer map, log lines, libgdbm or libjansson. Spawned by the same xinetd
 * service, its CPU per session is the least a program that is exec'd per connection and
 * authenticates with the distribution's libsasl2 can cost: odmrd minus this is odmrd's own share.
 *
 * usage: saslfloor -f odmrd.conf   (socket on fd 0/1, as inetd passes it)
 * Trusts: the config; lines longer than its buffer end the session. Never install it.
 */
#include <sasl/saslutil.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "net.h"

/* Write a whole reply to the socket (fd 1), with odmrd's own bounded write. */
static int put(const char *s)
{
	return net_write_all(1, s, strlen(s), 30);
}

/* Answer one line (CRLF stripped); -1 ends the session. */
static int answer(struct auth *a, const char *line, int *in_auth)
{
	char out[4096], dec[1024], err[256];
	const char *data;
	unsigned dlen, olen;
	enum auth_rc rc;

	if (*in_auth) {
		*in_auth = 0;
		if (sasl_decode64(line, (unsigned)strlen(line), dec, sizeof dec, &dlen) != SASL_OK)
			return put("501 bad base64\r\n");
		rc = auth_step(a, dec, dlen, &data, &olen);
		return put(rc == AUTH_OK ? "235 ok\r\n" : "535 no\r\n");
	}
	if (!strncmp(line, "EHLO", 4)) {
		if (auth_ready(a, err, sizeof err) != 0)
			return put("421 floor.test SASL unusable\r\n"), -1;
		snprintf(out, sizeof out, "250-floor.test\r\n250-AUTH %s\r\n250 ATRN\r\n", auth_mechs(a));
		return put(out);
	}
	if (!strncmp(line, "AUTH ", 5)) {
		rc = auth_start(a, line + 5, NULL, 0, &data, &olen);
		if (rc != AUTH_CONTINUE || sasl_encode64(data, olen, dec, sizeof dec, &dlen) != SASL_OK)
			return put("454 no\r\n");
		snprintf(out, sizeof out, "334 %s\r\n", dec);
		*in_auth = 1;
		return put(out);
	}
	if (!strncmp(line, "ATRN", 4))
		return put("450 floor: no mail here\r\n");
	if (!strncmp(line, "QUIT", 4))
		return put("221 floor.test closing\r\n"), -1;
	return put("502 no\r\n");
}

int main(int argc, char **argv)
{
	struct config cf;
	char buf[4096], err[512];
	size_t len = 0;
	int in_auth = 0;

	if (argc != 3 || strcmp(argv[1], "-f") != 0 || cf_load(argv[2], &cf, err, sizeof err) != 0)
		return 2;
	struct auth *a = auth_open(&cf, NULL, NULL, err, sizeof err);
	if (a == NULL || put("220 floor.test ESMTP\r\n") < 0)
		return 1;
	for (;;) {
		ssize_t n = read(0, buf + len, sizeof buf - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		char *eol;
		while ((eol = memchr(buf, '\n', len)) != NULL) {
			size_t ll = (size_t)(eol - buf) + 1;
			*eol = '\0';
			if (eol > buf && eol[-1] == '\r')
				eol[-1] = '\0';
			if (answer(a, buf, &in_auth) < 0) {
				auth_close(a);
				cf_free(&cf);
				return 0;
			}
			memmove(buf, buf + ll, len - ll);
			len -= ll;
		}
		if (len == sizeof buf - 1)
			break;
	}
	auth_close(a);
	cf_free(&cf);
	return 0;
}
