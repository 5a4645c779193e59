# odmrd - RFC 2645 On-Demand Mail Relay server (provider side).
# make, make check, make install [PREFIX=/usr/local DESTDIR=], make deb; see README.md for the rest.

PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
LIBDIR  ?= $(PREFIX)/lib
MANDIR  ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DOCDIR  ?= $(PREFIX)/share/doc/odmrd
EXAMPLESDIR ?= $(DOCDIR)/examples
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d

VERSION = 0.1.0

CC      ?= cc
# Warnings are errors in CI and `make check-sanitize` (WERROR=-Werror), not in a user's build with
# a newer compiler than ours.
WERROR  ?=
WARN    = -Wall -Wextra $(WERROR) -Wshadow -Wpointer-arith -Wstrict-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE $(shell pkg-config --cflags libsasl2)
# Where odmrd dlopen()s the TLS module from; its own variable, so a CPPFLAGS given on the command
# line does not drop it. Build and install with the same PREFIX/LIBDIR.
PATH_DEFS = -DCF_TLS_MODULE='"$(LIBDIR)/odmrd/odmrd-tls.so"'
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(SAN)
SASL_LIBS = $(shell pkg-config --libs libsasl2)
# odmrd is exec'd per connection: it links only libsasl2 (and libc). GDBM and jansson are opened
# by dynlib.c when a session first needs them, under the sonames the headers were built for.
LIBS    = $(SASL_LIBS)
# The TLS module: wolfSSL, loaded by odmrd only when a session starts TLS (never linked into odmrd).
TLS_LIBS = -lwolfssl
CHECK_LIBS = $(shell pkg-config --libs check)
soname = $(or $(shell objdump -p "$$($(CC) -print-file-name=lib$(1).so)" 2>/dev/null | \
	sed -n 's/^ *SONAME *//p'),$(error cannot find the soname of -l$(1) (objdump, lib$(1)-dev)))
domains.o: SONAME_DEFS = -DDOM_GDBM_SONAME='"$(call soname,gdbm)"'
mta_postfix.o: SONAME_DEFS = -DMTA_JANSSON_SONAME='"$(call soname,jansson)"'

CORE_OBJS = session.o linebuf.o log.o config.o domains.o dynlib.o
MTA_OBJS = mta.o mta_postfix.o mta_sendmail.o privsep.o proc.o rundir.o spawn.o
DAEMON_OBJS = odmrd.o admin.o auth.o handoff.o relay.o conn.o tls_load.o net.o $(MTA_OBJS) $(CORE_OBJS)
MAP_OBJS = odmrd-map.o domains.o config.o dynlib.o spawn.o
UNIT_OBJS = tests/unit/check_main.o tests/unit/check_linebuf.o tests/unit/check_domains.o \
	tests/unit/check_config.o tests/unit/check_session.o tests/unit/check_map.o \
	tests/unit/check_relay.o tests/unit/check_mta.o tests/unit/fake_auth.o tests/unit/fake_handoff.o \
	tests/unit/fake_base64.o

all: odmrd odmrd-map odmrd-tls.so

odmrd: $(DAEMON_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(LIBS)

# Hidden visibility: the module exports odmrd_tls_ops and nothing else. -z defs (no undefined
# symbol) except under the sanitizers, whose runtime only the executable links.
odmrd-tls.so: tls_wolfssl.c tls.h
	$(CC) $(CPPFLAGS) -I. $(ALL_CFLAGS) -fPIC -shared -fvisibility=hidden $(if $(SAN),,-Wl,-z,defs) \
		$(LDFLAGS) -o $@ tls_wolfssl.c $(TLS_LIBS)

odmrd-map: $(MAP_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(MAP_OBJS) -lgdbm

%.o: %.c $(wildcard *.h)
	$(CC) $(CPPFLAGS) $(SONAME_DEFS) $(PATH_DEFS) -I. $(ALL_CFLAGS) -c -o $@ $<

admin.o: CPPFLAGS += -DODMRD_VERSION=\"$(VERSION)\"

tests/unit/%.o: tests/unit/%.c $(wildcard *.h) tests/unit/unit.h
	$(CC) $(CPPFLAGS) $(PATH_DEFS) -I. $(ALL_CFLAGS) -c -o $@ $<

# The core links without libsasl2: the fakes stand in for auth.c, base64 from libresolv. The MTA
# parsers and the privsep request protocol are tested as they are (no command is started).
tests/unit/check_odmrd: $(UNIT_OBJS) $(CORE_OBJS) relay.o conn.o net.o $(MTA_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(CORE_OBJS) relay.o conn.o net.o $(MTA_OBJS) \
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

# The Debian package: make deb (source and binary), lintian, install/purge and the shipped
# service files in throwaway roots (tests/lib/troot.sh), with and without systemd running.
check-package: deps
	tests/package.sh

# README's admin guide run as written (its sh blocks, extracted) against the package and the system
# Postfix in a booted throwaway root, then fetchmail collects the mail.
check-guide: deps
	tests/admin-guide.sh

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

# What "make install" puts where (DESTDIR and the directories above are honoured); "make uninstall"
# removes exactly these files, and the directories it leaves empty. The service files and the
# examples name /usr/sbin/odmrd (the Debian package's path): installed, they name $(SBINDIR).
# odmrd.conf is installed from the example only when none exists, and uninstalled only while it
# is still identical to the example (an administrator's configuration is never removed).
INST_BIN  = $(SBINDIR)/odmrd $(SBINDIR)/odmrd-map $(LIBDIR)/odmrd/odmrd-tls.so
INST_MAN  = $(MANDIR)/man5/odmrd.conf.5 $(MANDIR)/man8/odmrd.8 $(MANDIR)/man8/odmrd-map.8
INST_DOC  = $(DOCDIR)/README.md $(DOCDIR)/LICENSE
EXAMPLE_SRC = etc/odmrd.conf.example xinetd.d/odmrd inetd/inetd.conf.odmrd xinetd.d/odmrs inetd/inetd.conf.odmrs \
	$(sort $(wildcard mta/postfix/* mta/sendmail/*))
INST_EXAMPLES = $(addprefix $(EXAMPLESDIR)/,$(EXAMPLE_SRC))
INST_UNITS = $(SYSTEMDUNITDIR)/odmrd.socket $(SYSTEMDUNITDIR)/odmrd@.service $(TMPFILESDIR)/odmrd.conf \
	$(SYSTEMDUNITDIR)/odmrs.socket $(SYSTEMDUNITDIR)/odmrs@.service
INST_CONF = $(SYSCONFDIR)/odmrd/odmrd.conf
INST_DIRS = $(EXAMPLESDIR)/mta/postfix $(EXAMPLESDIR)/mta/sendmail $(EXAMPLESDIR)/mta \
	$(EXAMPLESDIR)/etc $(EXAMPLESDIR)/xinetd.d $(EXAMPLESDIR)/inetd $(EXAMPLESDIR) $(DOCDIR) \
	$(SYSCONFDIR)/odmrd $(LIBDIR)/odmrd
# inst_text SRC DEST: a text file, mode 0644, with /usr/sbin/odmrd replaced by $(SBINDIR)/odmrd.
inst_text = sed 's|/usr/sbin/odmrd|$(SBINDIR)/odmrd|g' $(1) >$(DESTDIR)$(2).tmp && \
	chmod 0644 $(DESTDIR)$(2).tmp && mv -f $(DESTDIR)$(2).tmp $(DESTDIR)$(2)

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/odmrd \
		$(addprefix $(DESTDIR),$(sort $(dir $(INST_EXAMPLES))))
	install -m 0755 odmrd odmrd-map $(DESTDIR)$(SBINDIR)/
	install -d $(DESTDIR)$(LIBDIR)/odmrd
	install -m 0644 odmrd-tls.so $(DESTDIR)$(LIBDIR)/odmrd/
	install -m 0644 man/odmrd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/odmrd.8 man/odmrd-map.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	for f in $(EXAMPLE_SRC); do $(call inst_text,$$f,$(EXAMPLESDIR)/$$f) || exit 1; done
	$(call inst_text,systemd/odmrd.socket,$(SYSTEMDUNITDIR)/odmrd.socket)
	$(call inst_text,systemd/odmrd@.service,$(SYSTEMDUNITDIR)/odmrd@.service)
	$(call inst_text,systemd/odmrs.socket,$(SYSTEMDUNITDIR)/odmrs.socket)
	$(call inst_text,systemd/odmrs@.service,$(SYSTEMDUNITDIR)/odmrs@.service)
	$(call inst_text,systemd/odmrd.tmpfiles,$(TMPFILESDIR)/odmrd.conf)
	test -e $(DESTDIR)$(INST_CONF) || { $(call inst_text,etc/odmrd.conf.example,$(INST_CONF)); }

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INST_BIN) $(INST_MAN) $(INST_DOC) $(INST_EXAMPLES) $(INST_UNITS))
	if [ -f $(DESTDIR)$(INST_CONF) ] && sed 's|/usr/sbin/odmrd|$(SBINDIR)/odmrd|g' \
		etc/odmrd.conf.example | cmp -s - $(DESTDIR)$(INST_CONF); then rm -f $(DESTDIR)$(INST_CONF); fi
	for d in $(addprefix $(DESTDIR),$(INST_DIRS)); do [ ! -d "$$d" ] || rmdir --ignore-fail-on-non-empty "$$d"; done

# The Debian package (debian/, debhelper): built by dpkg-buildpackage in a copy of the tree under
# $(DEBBUILD), so neither this tree (debian/rules clean runs "make clean") nor its parent
# directory (where dpkg-buildpackage writes) is touched. Result: $(DEBBUILD)/odmrd_*.deb.
# DEBFLAGS="-us -uc" also builds the source package (the package tests lint both).
DEBBUILD ?= build/deb
DEBFLAGS ?= -us -uc -b
deb:
	rm -rf $(DEBBUILD)
	mkdir -p $(DEBBUILD)/odmrd
	tar -c --exclude=./.git --exclude=./build --exclude=./tests/work --exclude='*.o' \
		--exclude=./bench/results/tmp --exclude=./bench/work . | tar -x -C $(DEBBUILD)/odmrd
	cd $(DEBBUILD)/odmrd && dpkg-buildpackage $(DEBFLAGS)

clean:
	rm -f odmrd odmrd-map odmrd-tls.so *.o tests/unit/*.o tests/unit/check_odmrd fuzz/odmrd_fuzz
	$(MAKE) -C bench/tls clean

.PHONY: all deps check check-faults check-sanitize check-package check-guide demo bench fuzz fuzz-long install uninstall deb clean
