#!/bin/sh
# fuzz/build.sh - build the libFuzzer session target fuzz/odmrd_fuzz with ASan and UBSan.
# Links the real session core (session.c linebuf.c log.c config.c domains.c) against the fuzz
# fakes (fuzz/fake_auth.c, fuzz/fake_handoff.c) instead of auth.c/handoff.c, so neither a SASL
# database nor an MTA is needed; libsasl2 is linked only for sasl_encode64/sasl_decode64, and
# libgdbm for the real customer map. Compiles in one clang call, so no .o lands in the tree.
# Usage: fuzz/build.sh            (CC=clang-14 etc. to override; EXTRA_CFLAGS to add flags)
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
SASL_CFLAGS=$(pkg-config --cflags libsasl2)
SASL_LIBS=$(pkg-config --libs libsasl2)
# shellcheck disable=SC2086
$CC -g -O1 -std=c11 -Wall -Wextra \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE $SASL_CFLAGS -I. -Ifuzz ${EXTRA_CFLAGS:-} \
	-o fuzz/odmrd_fuzz \
	fuzz/fuzz_session.c fuzz/fake_auth.c fuzz/fake_handoff.c \
	session.c linebuf.c log.c config.c domains.c \
	$SASL_LIBS -lgdbm
echo "built fuzz/odmrd_fuzz"
