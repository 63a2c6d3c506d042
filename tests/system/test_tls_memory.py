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
import os
import socket
import ssl

import pytest

from conftest import SANITIZED, wait_for


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


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def raw_call(sock):
    """One XML-RPC request on SOCK as an HTTP/1.1 client that would keep
    the connection alive; returns the response, read to the end of the
    stream (which only comes if ternd closes the connection itself)."""
    sock.sendall(b"POST / HTTP/1.1\r\nHost: ternd\r\nContent-Type: text/xml"
                 b"\r\nContent-Length: %d\r\n\r\n" % len(BODY) +
                 BODY.encode())
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine keeps freed "
                    "memory on purpose, so RSS says nothing about leaks there")
def test_kept_alive_connections_do_not_grow_ternd(ternd_factory):
    """libsoup 3.2 keeps a kept-alive connection's objects (about 24 KB
    with TLS) for good once its client hangs up between requests: the
    soak's p2p logins grew ternd by 200 KB a migration.  ternd answers
    every request with Connection: close and libsoup ends the connection
    itself.  300 HTTPS connections, each closed by ternd (the client reads
    to the end of the stream), cost under 3 MB (7 MB before) and leave no
    descriptor behind; the Unix socket answers the same way."""
    t = ternd_factory(tls=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def https_raw():
        with socket.create_connection(("127.0.0.1", t.port), 30) as raw:
            with ctx.wrap_socket(raw) as s:
                return raw_call(s)

    for _ in range(10):
        https_raw()
    before, fds_before = rss_kib(t.proc.pid), fds(t.proc.pid)
    for _ in range(300):
        r = https_raw()
    assert b"SESSION_INVALID" in r
    assert b"\r\nConnection: close\r\n" in r.split(b"\r\n\r\n")[0] + b"\r\n"
    grown = rss_kib(t.proc.pid) - before
    assert grown < 3 * 1024, f"ternd grew by {grown} KiB over 300 connections"
    wait_for(lambda: fds(t.proc.pid) <= fds_before, 5,
             "ternd to close the connections it answered")

    with socket.socket(socket.AF_UNIX) as u:
        u.settimeout(30)
        u.connect(t.socket)
        r = raw_call(u)
    assert b"SESSION_INVALID" in r and b"Connection: close" in r
