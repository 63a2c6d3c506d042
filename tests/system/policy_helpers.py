"""Helpers for the qualification, prediction and convergence-policy system
tests (test_qualify_blockers.py, test_migrate_policy.py,
test_migrate_predict.py).

Builds on conftest.py and migration_helpers.py (which stay untouched):

- `TlsTernd`: a ternd serving HTTPS on its TCP port (its self-signed
  certificate is made in STATE_DIR/cert.pem), for the CLI's https://
  destination;
- the three ways one machine simulates a destination that cannot take a
  VM: a smaller CPU (`other_config:cpu_model_max`), less memory
  (`other_config:memory_total`), a kernel B's boot SR lacks
  (`BootFile`);
- `xapi_error`, `by_check`, `assert_blocker_complete`: small readers.
"""

import hashlib
import http.client
import os
import shutil
import ssl
import tempfile
import subprocess
import xmlrpc.client
from pathlib import Path

import pytest

from conftest import (BOOT_KERNEL, MIB, TERND, Ternd, Xapi, XapiFailure,
                      link_boot_files, wait_for)

# A CPU model that boots the test guest under TCG here and has features
# qemu64 lacks (popcnt, sse4.1, sse4.2, ssse3).
CPU_MODEL = "Nehalem"
CPU_MODEL_MISSING = ["popcnt", "sse4.1", "sse4.2", "ssse3"]
SMALL_CPU = "qemu64"


def _unverified():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsTernd(Ternd):
    """A ternd with TLS on its TCP port (everything else as Ternd)."""

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}/"

    @property
    def cert_path(self):
        return self.state_dir / "tls" / "cert.pem"

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        self.prepare_boot()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(TERND), "-F", "--state-dir", str(self.state_dir),
             "--run-dir", str(self.run_dir), "--socket", self.socket,
             "--listen", f"127.0.0.1:{self.port}",
             "--log-level", "debug", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=self.env)
        wait_for(self._answers, timeout, "ternd to answer on its TLS port")
        wait_for(lambda: os.path.exists(self.socket), timeout,
                 "ternd's unix socket")
        return self

    def _proxy(self):
        return xmlrpc.client.ServerProxy(self.url, allow_none=True,
                                         context=_unverified())

    def _answers(self):
        if self.proc.poll() is not None:
            pytest.fail(f"ternd exited with {self.proc.returncode}:\n"
                        + self.log_text()[-3000:])
        try:
            return bool(self._proxy().system.listMethods())
        except (OSError, http.client.HTTPException):
            return False

    def xapi(self, user="admin", password="adminpw"):
        x = Xapi(self.url)
        x.proxy = self._proxy()
        return x.login(user, password)

    def fingerprint(self):
        """SHA-256 of the certificate (DER), hex with colons."""
        pem = self.cert_path.read_text()
        digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


# ---- Destination limits --------------------------------------------------

def host_record(host):
    return host.api.call("host.get_record", host.host_ref())


def limit_cpu(host, model=SMALL_CPU):
    host.api.call("host.remove_from_other_config", host.host_ref(),
                  "cpu_model_max")
    host.api.call("host.add_to_other_config", host.host_ref(),
                  "cpu_model_max", model)


def unlimit_cpu(host):
    host.api.call("host.remove_from_other_config", host.host_ref(),
                  "cpu_model_max")


def memory_reserve(host):
    """What HOST keeps for itself: memory_total - memory_free - the
    memory of its running VMs (0 of them in these tests)."""
    rec = host_record(host)
    return int(rec["memory_total"]) - int(rec["memory_free"])


def limit_memory(host, free_bytes):
    """Makes HOST offer exactly FREE_BYTES (it must run no VM)."""
    total = memory_reserve(host) + free_bytes
    host.api.call("host.remove_from_other_config", host.host_ref(),
                  "memory_total")
    host.api.call("host.add_to_other_config", host.host_ref(),
                  "memory_total", str(total))
    return total


def unlimit_memory(host):
    host.api.call("host.remove_from_other_config", host.host_ref(),
                  "memory_total")


class BootFile:
    """The guest's kernel as a file of host B's boot SR ([storage]
    boot_dir, docs/storage.md): VMs name it by PATH, a boot-SR name.  A
    always has its own; B has it after put_on_b() (linked in again) and
    lacks it after remove_from_b()."""

    def __init__(self, name=BOOT_KERNEL):
        self.path = name
        self.ternd_b = None

    def put_on_b(self):
        link_boot_files(self.ternd_b.boot_dir)

    def remove_from_b(self):
        p = self.ternd_b.boot_dir / self.path
        if p.exists():
            p.unlink()

    def cleanup(self):
        pass


# ---- Readers -------------------------------------------------------------

def xapi_error(fn, *args):
    """Calls FN, which must fail with an XAPI error; returns its
    description (code first)."""
    try:
        fn(*args)
    except XapiFailure as e:
        return e.desc
    pytest.fail(f"{getattr(fn, '__name__', fn)}{args} succeeded")


def by_check(blockers):
    return {b["check"]: b for b in blockers}


def assert_blocker_complete(b):
    """A blocker has a code, a check, its objects, a sentence and a fix."""
    for key in ("code", "check", "objects", "message", "fix"):
        assert key in b, (key, b)
    assert isinstance(b["objects"], list) and b["objects"], b
    assert len(b["message"]) > 20 and len(b["fix"]) > 10, b


__all__ = ["CPU_MODEL", "CPU_MODEL_MISSING", "SMALL_CPU", "MIB", "TlsTernd",
           "HiddenFile", "assert_blocker_complete", "by_check",
           "host_record", "limit_cpu", "limit_memory", "memory_reserve",
           "unlimit_cpu", "unlimit_memory", "xapi_error"]
