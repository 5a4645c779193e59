#!/bin/bash
# tests/t-05-docs.sh - the documentation says what the code does: configuration keys and options.
#
# Why: a key added to config.c and not to odmrd.conf(5), a key removed from config.c but still
# in the example (an admin copying it gets a 421 for every connection), or a default written
# differently in the man page, the example and the code: each has happened. This suite reads the
# key table of config.c (cf_keys[], cf_sasl_known[]) and checks, per key, that odmrd.conf(5) has
# an entry, that etc/odmrd.conf.example shows it, that every key the two documents name is one
# config.c knows, and that the value shown commented out in the example is the built-in default
# as the program itself reports it (odmrd -n prints only keys that differ from the default) and
# as odmrd.conf(5) writes it. Keys whose default is "not set" are shown with an illustrative
# value, named in NOT_SET below. Also: every option of odmrd and odmrd-map is in its man page,
# and every tests/*.sh and tools/* file README.md names exists.
# Needs the built odmrd; no root, no server. Prints "N passed, N failed".

. "$(dirname "$0")/lib/common.sh"

MAN5=$TOP/man/odmrd.conf.5
EXAMPLE=$TOP/etc/odmrd.conf.example

# Keys whose built-in default is "not set" (or derived from another key): the example shows a
# value to illustrate, the man page says so in words.
NOT_SET=" hostname sasl_plugin_dir log_file user mta_user postfix_config_dir sendmail_cf exec_command"
NOT_SET+=" customer_map_group postfix_transport sendmail_m4 tls_cert_file tls_key_file tls_ca_file"
NOT_SET+=" tls_ticket_key_file tls_security_level "

# cf_keys: the key names of config.c's table, one a line.
cf_keys() { sed -n 's/^\t{ "\([a-z0-9_]*\)", T_[A-Z]*, S(.*/\1/p' "$TOP/config.c"; }
# sasl_known: cf_sasl_known[]'s names, one a line.
sasl_known() {
	sed -n '/^static const char \*const cf_sasl_known\[\]/,/^};/p' "$TOP/config.c" |
		grep -o '"[a-z0-9_]*"' | tr -d '"'
}
# man_keys: the keys odmrd.conf(5) gives an entry (".TP" then ".B key" or ".BR key ...").
man_keys() {
	awk 'prev == ".TP" && /^\.BR? / { for (i = 2; i <= NF; i++) { w = $i; gsub(/[",]/, "", w); if (w ~ /^[a-z][a-z0-9_]*$/) print w } } { prev = $0 }' "$MAN5"
}
# example_lines: "key value" for every key line of the example, commented out or not.
example_lines() { sed -n 's/^#\{0,1\}\([a-z][a-z0-9_]*\) = *\(.*\)$/\1 \2/p' "$EXAMPLE"; }
# man_default KEY: the first default odmrd.conf(5) gives in KEY's entry, font requests and quotes
# removed.
man_default() {
	awk -v k="$1" '
		prev == ".TP" && $0 == ".B " k { on = 1; txt = ""; next }
		on && $0 == ".TP" { on = 0 }
		on { txt = txt " " $0 }
		{ prev = $0 }
		END { i = index(txt, "default:"); print (i ? substr(txt, i + 8) : "") }' "$MAN5" |
		sed -n 's/^ *\(\.[A-Z]* \)\{0,1\}\([^ ;,)]*\).*/\2/p' | sed 's/\\-/-/g; s/"//g'
}

# --- every key of config.c is documented, and nothing else ---------------------------------------

KEYS=$(cf_keys | sort)
[ "$(echo "$KEYS" | wc -l)" -ge 40 ] && ok "config.c's key table read ($(echo "$KEYS" | wc -l) keys)" ||
	fail "config.c's key table read" "got: $KEYS"
SASL=$(sasl_known | sort)
[ "$(echo "$SASL" | wc -l)" -ge 30 ] && ok "config.c's libsasl2 option list read" || fail "config.c's libsasl2 option list read" "got: $SASL"

# A sasl_ name the documents use must be one config.c passes to libsasl2.
unknown_sasl() {
	while read -r k; do
		case $k in sasl_*) grep -qx "$k" <<<"$KEYS" || grep -qx "${k#sasl_}" <<<"$SASL" || echo "$k" ;; esac
	done
}

MANK=$(man_keys | sort -u)
expect_eq "odmrd.conf(5) has an entry for every key of config.c" \
	"$(comm -23 <(echo "$KEYS") <(echo "$MANK"))" ""
expect_eq "odmrd.conf(5) documents no key config.c does not know" \
	"$(comm -13 <(echo "$KEYS") <(echo "$MANK") | grep -v '^sasl_' ; echo "$MANK" | unknown_sasl)" ""

# odmrd.conf(5) lists every libsasl2 option odmrd passes on (an unlisted one is refused).
undocumented=
for o in $SASL; do grep -q "^\.BR\{0,1\} $o\( ,\| ;\|$\)" "$MAN5" || undocumented+="$o "; done
expect_eq "odmrd.conf(5) lists every libsasl2 option config.c accepts" "$undocumented" ""

EXK=$(example_lines | cut -d' ' -f1 | sort -u)
expect_eq "the example shows every key of config.c" "$(comm -23 <(echo "$KEYS") <(echo "$EXK"))" ""
expect_eq "the example names no key config.c does not know" \
	"$(comm -13 <(echo "$KEYS") <(echo "$EXK") | grep -v '^sasl_' ; echo "$EXK" | unknown_sasl)" ""
expect_eq "the example, as shipped, is a valid configuration (odmrd -n)" \
	"$("$ODMRD" -n -f "$EXAMPLE" 2>&1 >/dev/null; echo "exit $?")" "exit 0"

# --- the default shown is the default -------------------------------------------------------------

: >"$WORK/empty.conf"
bad_code= bad_man= n=0
while read -r key value; do
	case $NOT_SET in *" $key "*) continue ;; esac
	grep -q "^#$key = " "$EXAMPLE" || continue  # set in the example, not a default
	n=$((n + 1))
	# odmrd -n prints a key only when its value differs from the built-in default. tls_module's
	# default is LIBDIR's, fixed when odmrd was built (the documents show make install's).
	out=$("$ODMRD" -n -f "$WORK/empty.conf" -o "$key=$value" 2>&1)
	[ -z "$out" ] || [ "$key" = tls_module ] || bad_code+="example #$key = $value, odmrd -n: ${out:-nothing}; "
	md=$(man_default "$key")
	[ "$md" = "$value" ] || bad_man+="example #$key = $value, odmrd.conf(5): '$md'; "
done < <(example_lines | grep -v '^sasl_')
[ "$n" -ge 20 ] && ok "defaults compared for $n keys" || fail "defaults compared for $n keys (expected 20 or more)"
expect_eq "each default in the example is config.c's (odmrd -n prints nothing for it)" "$bad_code" ""
expect_eq "each default in the example is odmrd.conf(5)'s" "$bad_man" ""
# The NOT_SET keys must really be unset or derived: the list cannot hide a wrong default.
bad_unset=
for key in $NOT_SET; do
	grep -qx "$key" <<<"$KEYS" || bad_unset+="$key (not a key); "
	# hostname and tls_security_level are derived after parsing (gethostname, tls_cert_file).
	case $key in hostname | tls_security_level) continue ;; esac
	! grep -q "cf->$key = " "$TOP/config.c" || bad_unset+="$key (has a default in cf_defaults); "
done
expect_eq "the keys shown with an illustrative value have no built-in default" "$bad_unset" ""

# --- options ------------------------------------------------------------------------------------

# opts FILE: the option letters of FILE's getopt() call.
opts() { sed -n 's/.*getopt(argc, argv, "\([^"]*\)").*/\1/p' "$1" | tr -d ':' | grep -o .; }
undocumented=
for o in $(opts "$TOP/odmrd.c"); do grep -q "^\.BI\{0,1\}R\{0,1\} \\\\-$o\b" "$TOP/man/odmrd.8" || undocumented+="odmrd -$o "; done
for o in $(opts "$TOP/odmrd-map.c"); do grep -q "^\.BI\{0,1\}R\{0,1\} \\\\-$o\b" "$TOP/man/odmrd-map.8" || undocumented+="odmrd-map -$o "; done
expect_eq "every option of odmrd and odmrd-map is in its man page" "$undocumented" ""
[ "$(opts "$TOP/odmrd.c" | wc -l)" -ge 5 ] && ok "odmrd's getopt string read" || fail "odmrd's getopt string read"

# --- README's files -----------------------------------------------------------------------------

missing=
for f in $(grep -o '\(tests\|tools\)/[A-Za-z0-9_./-]*\.\(sh\|py\|c\)' "$TOP/README.md" | sort -u); do
	[ -e "$TOP/$f" ] || missing+="$f "
done
expect_eq "every tests/ and tools/ file README.md names exists" "$missing" ""
listed=$(grep -o '^| t-[0-9a-z-]* |' "$TOP/README.md" | tr -d '| ' | sort)
ondisk=$(cd "$TOP/tests" && ls t-*.sh | sed 's/\.sh$//' | sort)
expect_eq "README's suite table names exactly the suites in tests/" "$(diff <(echo "$listed") <(echo "$ondisk") | grep '^[<>]')" ""

t_summary
