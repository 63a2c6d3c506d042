"""A TLS connection to the API costs ternd nothing once it is gone.

GIO's GnuTLS backend reads the system's CA bundle into every server
connection that has no certificate database set, and part of it stayed
behind: each HTTPS request grew ternd by about 3.7 MB, so the soak's 200
migrations took each daemon from 16 MB to 1.6 GB (docs/reliability.md,
"Soak").  ternd now gives its server connections no database
(src/common/tlsserver.c).  This test makes 40 HTTPS requests, each on a
new connection, and bounds the growth of ternd's RSS: 40 x 3.7 MB would
be about 150 MB."""

import http.client
import ssl

import pytest

from conftest import SANITIZED


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


BODY = ("<?xml version='1.0'?><methodCall><methodName>VM.get_all"
        "</methodName><params><param><value>OpaqueRef:none</value></param>"
        "</params></methodCall>")


def https_call(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=30,
                                    context=ctx)
    try:
        c.request("POST", "/", BODY, {"Content-Type": "text/xml"})
        r = c.getresponse()
        assert r.status == 200
        assert b"SESSION_INVALID" in r.read()
    finally:
        c.close()


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine keeps freed "
                    "memory on purpose, so RSS says nothing about leaks there")
def test_tls_connections_do_not_grow_ternd(ternd_factory):
    t = ternd_factory(tls=True)
    for _ in range(5):          # warm-up: TLS stack, caches, arenas
        https_call(t.port)
    before = rss_kib(t.proc.pid)
    for _ in range(40):
        https_call(t.port)
    grown = rss_kib(t.proc.pid) - before
    assert grown < 20 * 1024, f"ternd grew by {grown} KiB over 40 requests"
