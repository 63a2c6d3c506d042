"""The destination's token authorises one migration: a wrong token, a
replayed one, one bound to another VM, or an expired one is refused, and
nothing changes on either host: the VM runs on the source in the same QEMU,
the destination has no record and no QEMU for it.

The token lives 60 s and the daemon has no clock override, so the expiry
test waits 61 s: it runs only with TERN_SLOW_TESTS=1.
"""

import os
import secrets
import time

import pytest

from conftest import XapiFailure
from migration_helpers import (assert_no_vm, assert_running, boot_guest,
                               hosts, start_migration, task_ok, token, vm_pid,
                               wait_task)

__all__ = ["hosts"]


def refused(src, vm, dest, options=None):
    """Runs the migration, expects it refused; returns error_info."""
    try:
        task = start_migration(src, vm, dest, True, options)
    except XapiFailure as e:  # refused before a task exists: fine too
        return e.desc
    rec = wait_task(src.api, task, timeout=30)
    assert rec["status"] == "failure", (rec["status"], rec["result"],
                                        rec["other_config"])
    assert rec["error_info"], rec
    return rec["error_info"]


def unchanged(a, b, vm, uuid, pid, con):
    """The VM runs on A in the same QEMU, memcheck going on; B has nothing
    of it."""
    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 1, 10, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st)
    assert_no_vm(b, uuid)


def test_wrong_token(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)
    dest = token(b, uuid)

    bad = dict(dest, token=secrets.token_hex(32))
    err = refused(a, vm, bad)
    print("wrong token:", err)
    assert "token" in " ".join(map(str, err)).lower(), err
    unchanged(a, b, vm, uuid, pid, con)

    # An empty token and a truncated one too.
    for t in ("", dest["token"][:-2]):
        refused(a, vm, dict(dest, token=t))
    unchanged(a, b, vm, uuid, pid, con)

    # The wrong attempts did not burn the real token.
    rec = wait_task(a.api, start_migration(a, vm, dest, True), timeout=60)
    task_ok(rec)
    assert b.vm_by_uuid(uuid) is not None


def test_replayed_token(hosts, guest):
    a, b = hosts
    vm1, uuid1, _ = boot_guest(a, guest, name="one", lines=1)
    vm2, uuid2, con2 = boot_guest(a, guest, name="two", lines=1)
    pid2 = vm_pid(a, vm2)

    dest = token(b)  # not bound to a VM
    task_ok(wait_task(a.api, start_migration(a, vm1, dest, True), 60))
    assert b.vm_by_uuid(uuid1) is not None

    err = refused(a, vm2, dest)
    print("replayed token:", err)
    unchanged(a, b, vm2, uuid2, pid2, con2)
    assert set(b.vms()) == {uuid1}


def test_token_bound_to_another_vm(hosts, guest):
    a, b = hosts
    vm1, uuid1, con1 = boot_guest(a, guest, name="one", lines=1)
    vm2, uuid2, _ = boot_guest(a, guest, name="two", lines=1)
    pid1 = vm_pid(a, vm1)

    dest = token(b, uuid2)
    assert dest.get("vm") == uuid2, dest
    err = refused(a, vm1, dest)
    print("token bound to another VM:", err)
    unchanged(a, b, vm1, uuid1, pid1, con1)
    assert b.vms() == {}

    # The token is still good for the VM it names.
    task_ok(wait_task(a.api, start_migration(a, vm2, dest, True), 60))
    assert set(b.vms()) == {uuid2}


def test_receive_map(hosts):
    """What host.migrate_receive promises: token, url, host, expires; two
    tokens are never equal."""
    a, b = hosts
    m1, m2 = token(b), token(b)
    for key in ("token", "url", "host", "expires"):
        assert m1.get(key), (key, m1)
    assert m1["token"] != m2["token"]
    assert len(m1["token"]) >= 32
    assert m1["host"] == b.host_ref()
    assert m1["url"].rstrip("/").endswith(f":{b.t.port}")


@pytest.mark.skipif(os.environ.get("TERN_SLOW_TESTS") != "1",
                    reason="waits out the 60 s token lifetime; "
                    "set TERN_SLOW_TESTS=1")
def test_expired_token(hosts, guest):
    a, b = hosts
    dest = token(b)
    t0 = time.monotonic()
    vm, uuid, con = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)
    time.sleep(max(0, 61 - (time.monotonic() - t0)))
    err = refused(a, vm, dest)
    print("expired token:", err)
    unchanged(a, b, vm, uuid, pid, con)
