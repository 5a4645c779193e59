#!/bin/sh
# fuzz/build.sh - build the libFuzzer session target fuzz/odmrd_fuzz with ASan and UBSan.
# Links the real session core (session.c linebuf.c log.c config.c domains.c) against the fuzz
# fakes (fuzz/fake_auth.c, fuzz/fake_handoff.c) instead of auth.c/handoff.c, so neither a SASL
# database nor an MTA is needed, and without libsasl2: base64 comes from the unit tests' codec
# (tests/unit/fake_base64.c, libresolv's), libgdbm serves the real customer map (the driver writes
# it; domains.c opens it through dynlib.c). Compiles in one clang call, so no .o lands in the tree.
# Usage: fuzz/build.sh            (CC=clang-14 etc. to override; EXTRA_CFLAGS to add flags)
# The Makefile's warnings; WERROR=-Werror (CI, .ci/run) makes them errors here too.
set -eu
cd "$(dirname "$0")/.."
CC=${CC:-clang}
# domains.c opens libgdbm at its first look-up (dynlib.c) under the soname it was built for.
GDBM_SONAME=$(objdump -p "$($CC -print-file-name=libgdbm.so)" | sed -n 's/^ *SONAME *//p')
# shellcheck disable=SC2086
$CC -g -O1 -std=c11 -Wall -Wextra ${WERROR:-} -Wshadow -Wpointer-arith -Wstrict-prototypes -Wformat=2 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -DDOM_GDBM_SONAME="\"$GDBM_SONAME\"" -I. -Ifuzz ${EXTRA_CFLAGS:-} \
	-o fuzz/odmrd_fuzz \
	fuzz/fuzz_session.c fuzz/fake_auth.c fuzz/fake_handoff.c tests/unit/fake_base64.c \
	session.c linebuf.c log.c config.c domains.c dynlib.c \
	-lgdbm -lresolv
echo "built fuzz/odmrd_fuzz"
