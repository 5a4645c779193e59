#!/usr/bin/env python3
# fuzz/mkseeds.py - regenerate the seed corpus fuzz/corpus/ (one small session per file: the good
# paths and each error path). Layout of every seed: 6 header octets (flags, pending mask, handoff
# statuses, max chunk, failing write, config variant; see fuzz_session.c), then what the client sends.
import base64, os, sys

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
os.makedirs(out, exist_ok=True)
b = lambda s: base64.b64encode(s.encode()).decode()

def seed(name, lines, flags=0, pending=0, ho=0, chunk=0, wfail=0, cv=0, raw=None):
    body = raw if raw is not None else "".join(l + "\r\n" for l in lines).encode("latin-1")
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([flags, pending, ho, chunk, wfail, cv]) + body)

E = "EHLO client.example"
A = "AUTH FAKE " + b("alice")
seed("01-good-ir", [E, A, "ATRN a.example"])
seed("02-good-challenge-all-domains", [E, "AUTH FAKE", b("alice"), "ATRN"])
seed("03-good-cram", [E, "AUTH CRAM-MD5", b("alice"), "ATRN a.example,b.example"])
seed("04-good-success-data", [E, "AUTH FAKE " + b("final"), "", "ATRN b.example"])
seed("05-good-realm-case-spaces", ["ehlo [192.0.2.7]", "auth fake " + b("alice@example.org"),
                                   "atrn A.EXAMPLE, b.example,a.example"])
seed("06-nomail-busy-tempfail-then-ok", [E, A, "ATRN", "ATRN a.example", "ATRN", "ATRN"],
     ho=0x01 | 0x02 << 2 | 0x03 << 4 | 0x00 << 6)
seed("07-auth-failures-421", [E, "AUTH FAKE " + b("mallory"), "AUTH FAKE", b("x"), "AUTH CRAM-MD5", b("y")])
seed("08-cancel-bad-b64-empty", [E, "AUTH FAKE", "*", "AUTH FAKE", "!!!!", "AUTH FAKE =", "AUTH FAKE abc",
                                 "AUTH FAKE YWxp Y2U=", "AUTH", "AUTH  FAKE", "AUTH CRAM-MD5 " + b("alice")])
seed("09-atrn-refusals", [E, A, "ATRN c.example", "ATRN a.example,c.example", "ATRN bad..domain",
                          "ATRN ", "ATRN -a.example", "ATRN a.example,,b.example",
                          "ATRN " + ",".join("d%d.example" % i for i in range(33)), "QUIT"])
seed("10-map-nouser-badvalue", [E, "AUTH FAKE " + b("bob"), "ATRN", "QUIT"])
seed("11-map-bad-value", [E, "AUTH FAKE " + b("carol"), "ATRN a.example", "RSET", "QUIT"])
seed("12-out-of-state", ["ATRN", "AUTH FAKE", "NOOP", "RSET", "HELO x", "MAIL FROM:<a@b>", "VERYLONGVERB",
                         E, "EHLO bad/name", "EHLO", E, A, "EHLO again.example", "AUTH FAKE", "QUIT"])
seed("13-eight-bit-and-errors-421", ["NOOP \xe9", "X", "Y", "Z", "W", "V", "U", "T", "S", "R", "Q"])
seed("14-pipelining", [E, "NOOP", "QUIT"], flags=0x20)
seed("15-data-before-greeting", [E], pending=0x01)
seed("16-data-after-atrn-early", [E, A, "ATRN"], pending=0x02)
seed("17-data-after-atrn-late", [E, A, "ATRN a.example"], pending=0x04)
seed("18-byte-by-byte", [E, "AUTH FAKE", b("alice"), "ATRN"], chunk=1)
seed("19-marks-split-crlf", None, raw=b"EHLO x.example\r\xff\nAU\xffTH FAKE " + b("alice").encode()
     + b"\r\n\xffATRN\r\n")
seed("20-bare-lf", None, raw=b"EHLO x.example\nNOOP\r\n")
seed("21-nul", None, raw=b"EHLO x.example\r\nNO\0OP\r\n")
seed("22-line-too-long", [E, "NOOP " + "x" * 600])
seed("23-auth-responses", [E, "AUTH FAKE", b("more"), b("empty"), b("echo:hello"), b("big"), "AUTH FAKE " + b("nouser"),
                           "AUTH FAKE " + b("longuser"), "AUTH FAKE " + b("temp"), "AUTH FAKE " + b("syntax"),
                           "AUTH FAKE " + b("nomech"), "AUTH X-NOMECH", "AUTH X-TEMP", "AUTH PLAIN", "AUTH " + "X" * 30])
seed("24-final-then-nonempty", [E, "AUTH FAKE " + b("final"), "Zm9v", "AUTH FAKE " + b("final"), "*"])
seed("25-write-fails-on-250", [E, A, "ATRN"], wfail=4)
seed("26-startup-error", [E], flags=0x02)
seed("27-no-auth-object", [E, "AUTH FAKE " + b("alice"), "ATRN", "QUIT"], flags=0x01)
seed("28-reset-fails", [E, "AUTH FAKE " + b("nobody")], flags=0x04)
seed("29-timeout-idle", [E, "NOOP"], flags=1 << 3)
seed("30-leave-handoff-to-free", [E, A, "ATRN"], flags=0x40)
seed("31-long-auth-line", [E, "AUTH FAKE " + b("echo:" + "z" * 300)])
seed("32-config-variants-greet-pause-no-map", [E, A, "ATRN"], cv=0x01 | 0x02)
seed("33-config-variants-limits", [E, A, "ATRN a.example,b.example", "X"], cv=0x04 | 0x08)
seed("34-config-variants-no-hostname", ["X", "Y", "Z", "W"], cv=0x20 | 0x08)
# STARTTLS (flags bit7: TLS configured): good path, encrypt, tls_auth_only, injection, prepare failure.
seed("40-starttls-good", [E, "STARTTLS", E, A, "ATRN a.example"], flags=0x80)
seed("41-starttls-encrypt", [E, A, "ATRN", "STARTTLS", E, A, "ATRN a.example"], flags=0x80, cv=0x40)
seed("42-starttls-auth-only", [E, A, "STARTTLS", "STARTTLS", E, "STARTTLS x", A, "STARTTLS"],
     flags=0x80, cv=0x80)
seed("43-starttls-injection", [E, "STARTTLS", "RSET"], flags=0x80 | 0x20)
seed("44-starttls-pending", [E, "STARTTLS", E], flags=0x80, pending=0x04)
seed("45-starttls-prepare-fails", [E, "STARTTLS", A, "ATRN a.example"], flags=0x80, wfail=0x80)
