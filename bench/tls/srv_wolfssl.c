/*
 * srv_wolfssl.c - one TLS server process with wolfSSL 5.5, for bench/tls/measure.sh.
 * argv: MODE CERT KEY; see srv_openssl.c. No session tickets.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	wolfSSL_Init();
	WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (ctx == NULL || wolfSSL_CTX_use_certificate_chain_file(ctx, argv[2]) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_use_PrivateKey_file(ctx, argv[3], WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		return 1;
	wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2);
	wolfSSL_CTX_NoTicketTLSv12(ctx);
	wolfSSL_CTX_no_ticket_TLSv13(ctx);
	if (strcmp(argv[1], "hs") != 0)
		return 0;
	WOLFSSL *s = wolfSSL_new(ctx);
	wolfSSL_set_fd(s, 0);
	if (wolfSSL_accept(s) != WOLFSSL_SUCCESS || wolfSSL_write(s, "ok\n", 3) != 3)
		return 1;
	wolfSSL_shutdown(s);
	return 0;
}
