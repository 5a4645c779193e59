# shellcheck shell=bash
# tests/lib/tls.sh - a throwaway PKI for odmrd's TLS tests, made by the test itself with the
# openssl command line (nothing here is ever used outside tests/work).
#
# Why: TLS tests need a CA the clients trust, server certificates of each key type (one sent with
# its intermediate, to prove that a chain in tls_cert_file works), client certificates that verify,
# that expired, and that come from a CA odmrd does not trust, a key that matches no certificate,
# and session ticket keys - all reproducible on a fresh CI machine.
#
#   tls_mk_pki DIR    writes, in DIR:
#     ca.crt                  the root CA (ECDSA P-256): clients' --cafile, odmrd's tls_ca_file
#     srv-ec.crt srv-ec.key   ECDSA P-256 server certificate for provider.test / 127.0.0.1
#                             (a year, with a CRL URI, so testssl.sh finds nothing to flag),
#                             issued by an intermediate CA; srv-ec.crt holds leaf + intermediate
#     srv-rsa.crt srv-rsa.key RSA 2048 server certificate, issued by the root directly
#     srv-ed.crt srv-ed.key   Ed25519 server certificate, issued by the root directly
#     other.key               an ECDSA key that matches no certificate (mismatch cases)
#     other-ed.key            an Ed25519 key that matches no certificate
#     alice.crt alice.key     client certificate CN=alice (clientAuth) from the root CA
#     expired.crt expired.key client certificate CN=alice, valid January 2020 only
#     stranger.crt stranger.key client certificate CN=alice from an untrusted CA
#     tickets.key             two ticket keys (64 hex digits a line), mode 0600
#   Returns non-zero (and prints openssl's complaint) if anything fails.

# tls__ca_cnf DIR CA: a minimal `openssl ca` configuration for CA's database in DIR/CA.db.
tls__ca_cnf() {
	mkdir -p "$1/$2.db/new"
	: >"$1/$2.db/index.txt"
	echo 1000 >"$1/$2.db/serial"
	cat >"$1/$2.cnf" <<-EOF
		[ ca ]
		default_ca = d
		[ d ]
		database = $1/$2.db/index.txt
		new_certs_dir = $1/$2.db/new
		serial = $1/$2.db/serial
		default_md = sha256
		policy = any
		copy_extensions = copy
		unique_subject = no
		[ any ]
		commonName = supplied
		[ v3_ca ]
		basicConstraints = critical, CA:true
		keyUsage = critical, keyCertSign, cRLSign
		[ server ]
		basicConstraints = CA:false
		extendedKeyUsage = serverAuth
		subjectAltName = DNS:provider.test, DNS:localhost, IP:127.0.0.1
		crlDistributionPoints = URI:http://crl.provider.test/ca.crl
		[ client ]
		basicConstraints = CA:false
		extendedKeyUsage = clientAuth
	EOF
}

# tls__issue DIR CA NAME CN EXT [openssl-ca options...]: NAME.key (new key of $TLS_KEYALG) and
# NAME.crt signed by CA.
tls__issue() {
	local d=$1 ca=$2 name=$3 cn=$4 ext=$5
	shift 5
	openssl req -new -newkey "$TLS_KEYALG" ${TLS_KEYOPT:+-pkeyopt "$TLS_KEYOPT"} -nodes \
		-keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$cn" 2>"$d/$name.err" &&
		openssl ca -batch -notext -config "$d/$ca.cnf" -cert "$d/$ca.crt" -keyfile "$d/$ca.key" \
			-extensions "$ext" -in "$d/$name.csr" -out "$d/$name.crt" "$@" 2>>"$d/$name.err" ||
		{ cat "$d/$name.err" >&2; return 1; }
}

# tls__root DIR NAME CN: a self-signed CA NAME.crt/NAME.key.
tls__root() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-keyout "$1/$2.key" -out "$1/$2.crt" -subj "/CN=$3" \
		-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		2>"$1/$2.err" || { cat "$1/$2.err" >&2; return 1; }
	tls__ca_cnf "$1" "$2"
}

tls_mk_pki() {
	local d=$1
	mkdir -p "$d"
	TLS_KEYALG=ec TLS_KEYOPT=ec_paramgen_curve:P-256
	tls__root "$d" ca "odmrd test root CA" || return 1
	tls__root "$d" badca "someone else's CA" || return 1
	# intermediate, signed by the root
	tls__issue "$d" ca inter "odmrd test intermediate CA" v3_ca -days 3650 || return 1
	tls__ca_cnf "$d" inter
	tls__issue "$d" inter srv-ec-leaf provider.test server -days 365 || return 1
	mv "$d/srv-ec-leaf.key" "$d/srv-ec.key"
	cat "$d/srv-ec-leaf.crt" "$d/inter.crt" >"$d/srv-ec.crt"
	tls__issue "$d" ca alice alice client -days 30 || return 1
	tls__issue "$d" ca expired alice client -startdate 20200101000000Z -enddate 20200201000000Z || return 1
	tls__issue "$d" badca stranger alice client -days 30 || return 1
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$d/other.key" 2>/dev/null || return 1
	TLS_KEYALG=ed25519 TLS_KEYOPT=
	tls__issue "$d" ca srv-ed provider.test server -days 365 || return 1
	openssl genpkey -algorithm ed25519 -out "$d/other-ed.key" 2>/dev/null || return 1
	TLS_KEYALG=rsa:2048 TLS_KEYOPT=
	tls__issue "$d" ca srv-rsa provider.test server -days 365 || return 1
	(umask 077 && { openssl rand -hex 32 && openssl rand -hex 32; } >"$d/tickets.key") || return 1
	chmod 600 "$d"/*.key
}
