/*
 * floor.c - the cheapest possible inetd-spawned ODMR handshake, for the benchmark only.
 *
 * A statically linked program that xinetd spawns exactly as it spawns odmrd (same service
 * settings) and that answers the handshake client's dialogue with canned replies: 220, EHLO,
 * AUTH CRAM-MD5 (fixed challenge, any response accepted: no SASL, no map, no config, no log),
 * ATRN -> 450, QUIT -> 221. Its latency is what the inetd shape itself costs (xinetd's accept,
 * fork, access check and logging; exec of a small binary; process exit), so odmrd's own share is
 * odmrd's latency minus this one. Never install it: it authenticates anybody.
 *
 * Trusts: nothing it reads matters; lines longer than its buffer end the session.
 */
#include <string.h>
#include <unistd.h>

/* Write a whole reply to the socket (fd 1). */
static int put(const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t w = write(1, s, n);
		if (w <= 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Answer every complete line in the buffer; returns -1 when the session is over. */
static int answer(char *buf, size_t *len)
{
	char *eol;

	while ((eol = memchr(buf, '\n', *len)) != NULL) {
		size_t ll = (size_t)(eol - buf) + 1;
		int rc = 0;

		if (!strncmp(buf, "EHLO", 4))
			rc = put("250-floor.test\r\n250-AUTH CRAM-MD5\r\n250 ATRN\r\n");
		else if (!strncmp(buf, "AUTH", 4))
			rc = put("334 PDEyMzQ1QGZsb29yLnRlc3Q+\r\n");
		else if (!strncmp(buf, "ATRN", 4))
			rc = put("450 floor: no mail here\r\n");
		else if (!strncmp(buf, "QUIT", 4)) {
			put("221 floor.test closing\r\n");
			return -1;
		} else
			rc = put("235 ok\r\n");   /* the CRAM-MD5 response line */
		if (rc < 0)
			return -1;
		memmove(buf, buf + ll, *len - ll);
		*len -= ll;
	}
	return 0;
}

int main(void)
{
	char buf[2048];
	size_t len = 0;

	if (put("220 floor.test ESMTP\r\n") < 0)
		return 1;
	for (;;) {
		ssize_t n = read(0, buf + len, sizeof buf - len);
		if (n <= 0)
			return 0;
		len += (size_t)n;
		if (answer(buf, &len) < 0 || len == sizeof buf)
			return 0;
	}
}
