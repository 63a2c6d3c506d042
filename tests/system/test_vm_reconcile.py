"""Reconciliation: a QEMU killed under ternd is noticed within about a
second (Halted, with the reason in other_config); a restart of ternd
re-attaches to running QEMUs, which stay Running, keep their pid and
stay under control."""

import os
import signal
import time

import pytest

from conftest import Ternd, guest_vm_record, pid_alive, wait_for
from test_vm_lifecycle import last_seq, qemu_pid, wait_memcheck


@pytest.fixture
def host(tmp_path):
    t = Ternd(tmp_path / "rec", ["--accel", "tcg"])
    t.start()
    yield t
    t.close()


def test_kill_9_qemu_noticed(host, guest):
    api = host.xapi()
    vm = api.call("VM.create", guest_vm_record(guest, name="victim",
                                               memory_mib=96))
    api.call("VM.start", vm, False, False)
    pid = qemu_pid(api, vm)
    assert pid_alive(pid)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: api.call("VM.get_power_state", vm) == "Halted", 3,
             "the VM to be Halted after kill -9")
    took = time.monotonic() - t0
    assert took < 1.5, f"noticed after {took:.2f}s"
    rec = api.call("VM.get_record", vm)
    assert rec["other_config"].get("last_halt_reason"), rec["other_config"]
    assert int(rec["domid"]) <= 0
    assert rec["current_operations"] == {}
    assert "start" in rec["allowed_operations"]
    # It can start again.
    api.call("VM.start", vm, False, False)
    assert api.call("VM.get_power_state", vm) == "Running"
    api.call("VM.hard_shutdown", vm)


def test_restart_ternd_keeps_vm_running(host, guest):
    api = host.xapi()
    vm = api.call("VM.create", guest_vm_record(guest, name="survivor",
                                               memory_mib=96))
    api.call("VM.start", vm, False, False)
    pid = qemu_pid(api, vm)
    wait_memcheck(api, vm, 0, timeout=40)

    host.restart()
    assert pid_alive(pid), "QEMU died with ternd"
    api = host.xapi()
    rec = api.call("VM.get_record", vm)
    assert rec["power_state"] == "Running"
    assert int(rec["domid"]) == pid
    # Still under control: the console goes on, pause stops it.
    seq = wait_memcheck(api, vm, last_seq(api, vm) + 1, timeout=10)
    api.call("VM.pause", vm)
    assert api.call("VM.get_power_state", vm) == "Paused"
    frozen = last_seq(api, vm)
    time.sleep(1.6)  # the scenario: time passes while paused
    assert last_seq(api, vm) == frozen
    api.call("VM.unpause", vm)
    wait_memcheck(api, vm, frozen + 1, timeout=10)
    assert seq is not None

    # A VM whose QEMU went away while ternd was down is Halted with a
    # reason after the next start.
    host.stop()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 5, "QEMU to die")
    host.start()
    api = host.xapi()
    rec = api.call("VM.get_record", vm)
    assert rec["power_state"] == "Halted"
    assert rec["other_config"].get("last_halt_reason")
