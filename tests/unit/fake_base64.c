/*
 * fake_base64.c - auth_encode64/auth_decode64 of auth.h for the programs that link the session core
 * without auth.c and libsasl2: the unit tests and the fuzzer (fuzz/build.sh compiles this file too,
 * so both use one implementation). The codec is the C library's resolver one (b64_ntop/b64_pton in
 * libresolv); b64_pton skips white space, which libsasl2 refuses, so anything outside the base64
 * alphabet is refused here first. Trusts nothing in its input.
 */
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <resolv.h>
#include <string.h>

#include "auth.h"

/* See auth.h. */
int auth_encode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen)
{
	int n = b64_ntop((const unsigned char *)in, inlen, out, outmax);

	*outlen = n < 0 ? 0 : (unsigned)n;
	return n < 0 ? -1 : 0;
}

/* See auth.h. */
int auth_decode64(const char *in, unsigned inlen, char *out, unsigned outmax, unsigned *outlen)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
	char text[16384];

	*outlen = 0;
	if (inlen >= sizeof text)
		return -1;
	memcpy(text, in, inlen);
	text[inlen] = '\0';
	if (strspn(text, alphabet) != inlen)
		return -1;
	int n = b64_pton(text, (unsigned char *)out, outmax);
	if (n < 0)
		return -1;
	*outlen = (unsigned)n;
	return 0;
}
