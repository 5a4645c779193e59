# odmrd - RFC 2645 On-Demand Mail Relay server (provider side).
# make, make check, make install [PREFIX=/usr/local DESTDIR=]; see README.md for the rest.

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc

CC      ?= cc
# Warnings are errors in CI and `make check-sanitize` (WERROR=-Werror), not in a user's build with
# a newer compiler than ours.
WERROR  ?=
WARN    = -Wall -Wextra $(WERROR) -Wshadow -Wpointer-arith -Wstrict-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE $(shell pkg-config --cflags libsasl2)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SAN)
SASL_LIBS = $(shell pkg-config --libs libsasl2)
LIBS    = $(SASL_LIBS) -lgdbm -ljansson
CHECK_LIBS = $(shell pkg-config --libs check)

CORE_OBJS = session.o linebuf.o log.o config.o domains.o
MTA_OBJS = mta.o mta_postfix.o mta_sendmail.o privsep.o proc.o rundir.o
DAEMON_OBJS = odmrd.o auth.o handoff.o relay.o net.o $(MTA_OBJS) $(CORE_OBJS)
MAP_OBJS = odmrd-map.o domains.o
UNIT_OBJS = tests/unit/check_main.o tests/unit/check_linebuf.o tests/unit/check_domains.o \
	tests/unit/check_config.o tests/unit/check_session.o tests/unit/check_map.o \
	tests/unit/check_relay.o tests/unit/check_mta.o tests/unit/fake_auth.o tests/unit/fake_handoff.o \
	tests/unit/fake_base64.o

all: odmrd odmrd-map

odmrd: $(DAEMON_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(LIBS)

odmrd-map: $(MAP_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(MAP_OBJS) -lgdbm

%.o: %.c $(wildcard *.h)
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -c -o $@ $<

tests/unit/%.o: tests/unit/%.c $(wildcard *.h) tests/unit/unit.h
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -c -o $@ $<

# The core links without libsasl2: the fakes stand in for auth.c, base64 from libresolv. The MTA
# parsers and the privsep request protocol are tested as they are (no command is started).
tests/unit/check_odmrd: $(UNIT_OBJS) $(CORE_OBJS) relay.o net.o $(MTA_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(CORE_OBJS) relay.o net.o $(MTA_OBJS) \
		-lgdbm -ljansson -lresolv $(CHECK_LIBS)

# The two commands of the README. Both install missing Debian packages first (root, apt-get),
# so they work on a fresh Debian 12 machine.
deps:
	tools/install-deps.sh

# Unit tests first (fast), then the process-level suites; each suite prints "N passed, N failed".
check: deps
	$(MAKE) all tests/unit/check_odmrd
	tests/run-all.sh

# Longer suites CI also runs: faults with a real MTA (kills mid-delivery), and the unit and
# protocol suites under ASan/UBSan and valgrind.
check-faults: deps
	$(MAKE) all
	tests/faults.sh

check-sanitize: deps
	tests/sanitize.sh

# The main job shown end to end: private Postfix, odmrd under xinetd, real fetchmail.
demo: deps
	$(MAKE) all
	tools/demo.sh

# Benchmarks against the peers (minutes; not part of check). Report: bench/results/REPORT.md.
bench:
	tools/install-deps.sh bench
	$(MAKE) all
	bench/run.sh

# libFuzzer on the session core: make fuzz FUZZ_SECONDS=600; make fuzz-long for 10M executions.
FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

fuzz-long:
	fuzz/run.sh 0 -runs=10000000

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 odmrd odmrd-map $(DESTDIR)$(SBINDIR)/
	install -m 0644 man/odmrd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/odmrd.8 man/odmrd-map.8 $(DESTDIR)$(MANDIR)/man8/

clean:
	rm -f odmrd odmrd-map *.o tests/unit/*.o tests/unit/check_odmrd fuzz/odmrd_fuzz

.PHONY: all deps check check-faults check-sanitize demo bench fuzz fuzz-long install clean
