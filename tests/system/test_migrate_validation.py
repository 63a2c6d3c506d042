"""What a peer or a client sends is checked before it touches the
filesystem, and the migration token does what docs/migration.md says
(docs/api.md, "What is validated"; docs/qualification.md, "files").

- A source that names a FIFO as the VM's kernel, or lists one in its
  facts, gets a qualification blocker at once; the destination's main loop
  never opens it (an open with no writer would block it) and keeps
  answering.
- A VM uuid such as "../../x" never becomes a run directory: the channel
  refuses it with UUID_INVALID and nothing is created; host.migrate_receive
  refuses such a vm option with INVALID_VALUE.
- VM.start refuses a kernel that is a symbolic link and a FIFO dropped
  into the boot SR, before QEMU runs; SR.scan makes no VDI of the FIFO.
- VM.migrate_check probes with the token without using it up: check then
  send with the same token succeeds, and the token is spent by the send.
- A token bound with options.vm = the source's ref of the VM admits that
  VM and no other.
- max_duration is whole seconds from 1 to a week: 604800 is taken,
  604801 refused with INVALID_VALUE naming the option.

The channel tests speak TERN-MIGRATE/1 on a plain socket, as a source
would (the daemons run with --no-tls).
"""

import json
import os
import platform
import socket
import time
import uuid as uuidlib

import pytest

from conftest import MIB, XapiFailure, guest_vm_record
from migration_helpers import (NULL, assert_no_vm, boot_guest, hosts,
                               start_migration, task_ok, token, wait_task)

__all__ = ["hosts"]


def channel(host, verb, msg, timeout=10):
    """Sends one channel message to HOST; returns (verb, body) of the first
    line of the answer, or fails when none comes within TIMEOUT."""
    with socket.create_connection(("127.0.0.1", host.t.port), 5) as s:
        s.settimeout(timeout)
        s.sendall(f"{verb} {json.dumps(msg)}\n".encode())
        buf = b""
        try:
            while b"\n" not in buf:
                got = s.recv(65536)
                if not got:
                    break
                buf += got
        except socket.timeout:
            pytest.fail(f"no answer to {verb} within {timeout} s: the "
                        f"destination's main loop is blocked")
    line = buf.split(b"\n", 1)[0].decode()
    v, _, body = line.partition(" ")
    return v, json.loads(body) if body else {}


def fake_migration(dst, record, files, test=True):
    """A TERN-MIGRATE/1 a source would send for RECORD, with a fresh token
    of DST; FILES are the facts' file list."""
    qemu = dst.api.call("host.get_software_version", dst.host_ref())["qemu"]
    facts = {
        "vm_uuid": record["uuid"], "vm_name": record["name_label"],
        "vm_ref": "OpaqueRef:" + str(uuidlib.uuid4()),
        "record": record, "host_uuid": str(uuidlib.uuid4()),
        "host_name": "fake-source", "arch": platform.machine(),
        "qemu_version": qemu, "machine": "pc", "machine_requested": "pc",
        "cpu_model": "qemu64", "cpu_features": [], "files": files,
        "memory": record["memory_static_max"],
        "power_state": "Running", "live": True,
    }
    return {"token": token(dst)["token"], "migration_id": str(uuidlib.uuid4()),
            "secret": "s" * 64, "facts": facts, "vm": record,
            "options": {}, "live": True, "test": test}


def plain_record(guest, uuid=None):
    rec = guest_vm_record(guest, name="fake", memory_mib=64)
    # As the source's store holds it: numbers, not XML-RPC's strings.
    rec = {k: int(v) if k.startswith(("memory_", "VCPUs_")) else v
           for k, v in rec.items()}
    rec.update(uuid=uuid or str(uuidlib.uuid4()), power_state="Running",
               platform={}, other_config={})
    return rec


def answers(host, within=5):
    t0 = time.monotonic()
    host.api.call("host.get_record", host.host_ref())
    assert time.monotonic() - t0 < within


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    yield str(path)
    # Unblock whoever would still wait on it (a daemon without the fix).
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


def test_fifo_in_the_facts_is_a_blocker_not_a_hang(hosts, guest, fifo):
    _, b = hosts
    # Listed in the facts only, as a file the source has: never opened.
    rec = plain_record(guest)
    files = {fifo: {"field": "disk", "exists": True, "size": 1,
                    "sha256_head": "00"}}
    t0 = time.monotonic()
    verb, body = channel(b, "TERN-MIGRATE/1", fake_migration(b, rec, files))
    assert verb == "QUALIFIED", (verb, body)
    # The kernel the record names is a FIFO in B's boot SR: a blocker, at
    # once.
    os.mkfifo(b.t.boot_dir / "fifo-kernel")
    rec = plain_record(guest)
    rec["PV_kernel"] = "fifo-kernel"
    verb, body = channel(b, "TERN-MIGRATE/1", fake_migration(b, rec, files))
    elapsed = time.monotonic() - t0
    print("FIFO:", verb, body, f"{elapsed:.2f} s")
    assert verb == "REFUSED", (verb, body)
    assert body["error"][0] == "VM_FILE_MISSING", body
    [blk] = body["blockers"]
    assert blk["check"] == "files" and "fifo-kernel" in blk["objects"], blk
    assert "FIFO" in blk["message"], blk
    assert elapsed < 5
    answers(b)


def test_uuid_that_is_a_path_is_refused(hosts, guest):
    _, b = hosts
    for bad in ("../../x", "../../../../tmp/tern-escape", "x" * 36):
        rec = plain_record(guest, uuid=bad)
        verb, body = channel(b, "TERN-MIGRATE/1",
                             fake_migration(b, rec, {}, test=False))
        print(bad, verb, body)
        assert verb == "REFUSED", (verb, body)
        assert body["error"][:3] == ["UUID_INVALID", "VM", bad], body
    # Nothing was made: no record, no directory beside or above vms/.
    assert b.vms() == {}
    run = os.path.realpath(b.run_dir)
    assert not os.path.exists(os.path.join(run, "vms", "../../x"))
    assert not os.path.exists("/tmp/tern-escape")
    answers(b)
    with pytest.raises(XapiFailure) as e:
        b.api.call("host.migrate_receive", b.host_ref(), NULL,
                   {"vm": "../../x"})
    assert e.value.code == "INVALID_VALUE" and e.value.params[0] == "vm", \
        e.value.desc


def test_start_refuses_files_that_are_not_regular(hosts, guest, fifo,
                                                  tmp_path):
    a, _ = hosts
    # Dropped into the boot SR by hand: a symbolic link and a FIFO.
    (a.t.boot_dir / "linked-vmlinuz").symlink_to(guest[0])
    os.mkfifo(a.t.boot_dir / "fifo-vmlinuz")
    rec = guest_vm_record(guest, name="linked")
    rec["PV_kernel"] = "linked-vmlinuz"
    vm = a.api.call("VM.create", rec)
    with pytest.raises(XapiFailure) as e:
        a.api.call("VM.start", vm, False, False)
    print(e.value.desc)
    assert e.value.code == "BOOTLOADER_FAILED", e.value.desc
    assert "symbolic link" in e.value.params[1], e.value.desc

    rec = guest_vm_record(guest, name="fifo-kernel")
    rec["PV_kernel"] = "fifo-vmlinuz"
    vm = a.api.call("VM.create", rec)
    t0 = time.monotonic()
    with pytest.raises(XapiFailure) as e:
        a.api.call("VM.start", vm, False, False)
    print(e.value.desc)
    assert e.value.code == "BOOTLOADER_FAILED", e.value.desc
    assert "fifo-vmlinuz" in e.value.params[1], e.value.desc
    assert "FIFO" in e.value.params[1], e.value.desc
    assert time.monotonic() - t0 < 5
    assert a.api.call("VM.get_power_state", vm) == "Halted"
    # A scan of the boot SR opens neither and makes VDIs of neither.
    boot = [r for r, s in a.api.call("SR.get_all_records").items()
            if s["content_type"] == "kernel"]
    assert len(boot) == 1
    a.api.call("SR.scan", boot[0])
    names = {a.api.call("VDI.get_location", v)
             for v in a.api.call("SR.get_VDIs", boot[0])}
    assert "fifo-vmlinuz" not in names and "vmlinuz" in names, names
    answers(a)


def test_check_then_send_with_one_token(hosts, guest):
    a, b = hosts
    vm, uuid, _ = boot_guest(a, guest, lines=1)
    dest = token(b)
    res = a.api.call("VM.migrate_check", vm, dest, {})
    print("migrate_check:", res)
    assert res["blockers"] == [], res
    assert float(res["prediction"]["probe_mib_s"]) > 0, res
    task_ok(wait_task(a.api, start_migration(a, vm, dest), timeout=90))
    assert b.vm_by_uuid(uuid) is not None

    # The send used it up: another VM cannot come with it.
    other = a.api.call("VM.create", guest_vm_record(guest, name="other"))
    t = a.api.call("Async.VM.migrate_send", other, dest, False, {}, {}, {})
    rec = wait_task(a.api, t, timeout=30)
    print("reuse:", rec["error_info"])
    assert rec["status"] == "failure", rec
    assert rec["error_info"][0] == "SESSION_AUTHENTICATION_FAILED", rec
    assert b.vm_by_uuid(a.api.call("VM.get_uuid", other)) is None


def test_token_bound_to_the_sources_ref(hosts, guest):
    a, b = hosts
    vm = a.api.call("VM.create", guest_vm_record(guest, name="by-ref"))
    other = a.api.call("VM.create", guest_vm_record(guest, name="not-it"))
    dest = token(b, options={"vm": vm})
    assert dest["vm"] == vm, dest

    t = a.api.call("Async.VM.migrate_send", other, dest, False, {}, {}, {})
    rec = wait_task(a.api, t, timeout=30)
    assert rec["status"] == "failure", rec
    assert "another VM" in " ".join(rec["error_info"]), rec
    assert_no_vm(b, a.api.call("VM.get_uuid", other))

    uuid = a.api.call("VM.get_uuid", vm)
    t = a.api.call("Async.VM.migrate_send", vm, dest, False, {}, {}, {})
    task_ok(wait_task(a.api, t, timeout=30))
    assert b.vm_by_uuid(uuid) is not None


def test_max_duration_bounds(hosts, guest):
    a, b = hosts
    vm = a.api.call("VM.create", guest_vm_record(guest, name="bounds"))

    def check(value):
        t = a.api.call("Async.VM.assert_can_migrate", vm, token(b), False,
                       {}, {}, {"max_duration": value})
        return wait_task(a.api, t, timeout=30)

    task_ok(check("604800"))
    for bad in ("604801", "1e12", "18446744073709551616"):
        rec = check(bad)
        print(bad, rec["error_info"])
        assert rec["status"] == "failure", rec
        assert rec["error_info"][:3] == ["INVALID_VALUE", "max_duration",
                                         bad], rec
    assert b.vms() == {}
