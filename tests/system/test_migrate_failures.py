"""Failures in the middle of a migration never lose the VM and never run it
twice.

- kill -9 of the destination QEMU mid-transfer: the VM goes on running at
  the source in the same QEMU; the destination has no record, no QEMU.
- kill -9 of the source ternd mid-transfer, then a restart with the same
  directories: once recovery has settled, exactly one copy runs (at A or
  at B, never both, never none), and its memcheck goes on without errors.

The migrations are slowed by a bandwidth cap so that "mid-transfer" is a
wide window.
"""

import time

import pytest

from conftest import pid_alive, wait_for
from migration_helpers import (Console, assert_no_vm, assert_running,
                               boot_guest, hosts, kill9, start_migration,
                               token, transferred, vm_pid, wait_phase,
                               wait_task)

__all__ = ["hosts"]

MIB = 1024 * 1024


@pytest.mark.parametrize("mode", ["tunnelled", "direct"])
def test_destination_qemu_killed(hosts, guest, mode):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)

    task = start_migration(a, vm, token(b, uuid), True,
                           {"bandwidth": "4", "mode": mode})
    wait_phase(a.api, task, lambda r: transferred(r) > 2 * MIB, 30,
               "2 MiB transferred")
    dst_ref = b.vm_by_uuid(uuid)
    assert dst_ref is not None, "no record at the destination mid-transfer"
    dst_rec = b.api.call("VM.get_record", dst_ref)
    print("destination record mid-transfer: power_state",
          dst_rec["power_state"], "domid", dst_rec["domid"])
    dst_pid = b.qemu_pids().get(uuid)
    assert dst_pid and dst_pid != pid, (dst_pid, pid)

    kill9(dst_pid)
    rec = wait_task(a.api, task, timeout=30)
    print("after the destination QEMU died:", rec["status"],
          rec["error_info"])
    assert rec["status"] == "failure", rec

    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 3, 15, "memcheck to go on at the source")
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert all(s["errors"] == "0" for s in st), st[-3:]
    assert_no_vm(b, uuid)
    assert b.vms() == {}


def running_copies(a, b, uuid):
    """[(host, pid)] of the copies that run: a Running record whose QEMU
    is alive.  Also returns every live QEMU for UUID on either host."""
    runs, qemus = [], []
    for h in (a, b):
        pid = h.qemu_pids().get(uuid)
        if pid:
            qemus.append((h.name, pid))
        rec = h.vm_record(uuid)
        if rec is not None:
            if rec["power_state"] == "Running" and pid_alive(int(rec["domid"])):
                runs.append((h, int(rec["domid"])))
    return runs, qemus


def settled_one_copy(a, b, uuid):
    """True once exactly one host has the VM (record and QEMU) and the
    other has neither."""
    runs, qemus = running_copies(a, b, uuid)
    records = [h.name for h in (a, b) if h.vm_by_uuid(uuid) is not None]
    return len(runs) == 1 and len(qemus) == 1 and len(records) == 1


@pytest.mark.parametrize("mode", ["tunnelled", "direct"])
def test_source_ternd_killed_and_restarted(hosts, guest, mode):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    src_pid = vm_pid(a, vm)

    task = start_migration(a, vm, token(b, uuid), True,
                           {"bandwidth": "8", "mode": mode})
    wait_phase(a.api, task, lambda r: transferred(r) > 4 * MIB, 30,
               "4 MiB transferred")

    a.t.proc.kill()
    a.t.proc.wait(10)
    a.t.log.close()
    # At no instant may two copies run (the source ternd is down now).
    runs, qemus = running_copies_no_a(b, uuid, src_pid)
    assert runs <= 1, qemus
    time.sleep(0.5)
    a.t.start()
    a.restart_api()

    def settled():
        return settled_one_copy(a, b, uuid)

    wait_for(settled, 60, "exactly one copy of the VM after recovery",
             interval=0.2)
    runs, qemus = running_copies(a, b, uuid)
    (host, pid), = runs
    print(f"{mode}: after recovery the VM runs on {host.name} (pid {pid}); "
          f"source QEMU {src_pid} alive: {pid_alive(src_pid)}")
    # It stays that way: no late second copy.
    time.sleep(1.0)
    assert settled_one_copy(a, b, uuid)
    if host is a:
        assert pid == src_pid  # the source's own QEMU, never restarted
        c = con
    else:
        assert not pid_alive(src_pid)
        c = Console(b.console_path(uuid))
    n = len(c.status())
    st = c.wait_status(n + 3, 20, f"memcheck to go on at {host.name}")
    assert all(s["errors"] == "0" for s in st), st[-3:]
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def running_copies_no_a(b, uuid, src_pid):
    """While A's ternd is down: how many QEMUs of the VM are running
    (not paused) - the source QEMU by pid and B's by its record."""
    qemus = []
    if pid_alive(src_pid):
        qemus.append(("A", src_pid))
    rec = b.vm_record(uuid)
    n = 1 if pid_alive(src_pid) else 0
    if rec is not None:
        qemus.append(("B", rec["domid"], rec["power_state"]))
        if rec["power_state"] == "Running":
            n += 1
    return n, qemus
