/*
 * srv_openssl.c - one TLS server process with OpenSSL 3.0, for bench/tls/measure.sh.
 * argv: MODE CERT KEY. MODE "init": library init + server context + certificate and key, then
 * exit. MODE "hs": the same, then a real handshake on fd 0, one record "ok\n", close_notify.
 * No session tickets (the other candidates are measured the same way).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1)
		return 1;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	if (strcmp(argv[1], "hs") != 0)
		return 0;
	SSL *s = SSL_new(ctx);
	SSL_set_fd(s, 0);
	if (SSL_accept(s) != 1 || SSL_write(s, "ok\n", 3) != 3)
		return 1;
	SSL_shutdown(s);
	return 0;
}
