/*
 * srv_gnutls.c - one TLS server process with GnuTLS 3.7, for bench/tls/measure.sh.
 * argv: MODE CERT KEY; see srv_openssl.c. No session tickets.
 */
#include <gnutls/gnutls.h>
#include <string.h>

int main(int argc, char **argv)
{
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	int rc;

	if (argc != 4)
		return 2;
	if (gnutls_global_init() < 0 || gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_certificate_set_x509_key_file(cred, argv[2], argv[3], GNUTLS_X509_FMT_PEM) < 0)
		return 1;
	if (strcmp(argv[1], "hs") != 0)
		return 0;
	gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NO_TICKETS);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, 0);
	do
		rc = gnutls_handshake(s);
	while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0 || gnutls_record_send(s, "ok\n", 3) != 3)
		return 1;
	gnutls_bye(s, GNUTLS_SHUT_WR);
	return 0;
}
