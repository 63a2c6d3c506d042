"""Ten round trips A -> B -> A of one live memcheck guest, each migration
with its own token handshake.  At every hop the sequence continues and at
the end memcheck has counted zero errors; only one QEMU ever remains.
"""

import time

from conftest import pid_alive
from migration_helpers import (Console, assert_continues, boot_guest, hosts,
                               start_migration, task_ok, token, vm_pid,
                               wait_task)

__all__ = ["hosts"]

ROUND_TRIPS = 10


def test_ten_round_trips(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2, memory_mib=96, mib=16,
                               rate=4)
    here, there = a, b
    pid = vm_pid(a, vm)
    times, figures = [], []
    for hop in range(2 * ROUND_TRIPS):
        t0 = time.monotonic()
        dest = token(there, uuid)
        rec = wait_task(here.api, start_migration(here, vm, dest, True),
                        timeout=60)
        vm = task_ok(rec)
        times.append(time.monotonic() - t0)
        figures.append(rec["other_config"].get("total_ms"))
        new_con = Console(there.console_path(uuid))
        assert_continues(con, new_con, new_lines=1)
        wait = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < wait:
            time.sleep(0.02)
        assert not pid_alive(pid), f"hop {hop}: source QEMU {pid} lives on"
        assert here.vm_by_uuid(uuid) is None, f"hop {hop}: source record"
        assert uuid not in here.qemu_pids()
        con.close()
        con = new_con
        pid = vm_pid(there, vm)
        here, there = there, here

    assert here is a
    assert a.api.call("VM.get_power_state", vm) == "Running"
    assert b.vms() == {}
    st = con.wait_status(len(con.status()) + 2, 10, "memcheck back on A")
    assert all(s["errors"] == "0" for s in st), st[-3:]
    print(f"{len(times)} migrations, {sum(times):.1f} s, "
          f"max {max(times):.2f} s; final {st[-1]}; total_ms {figures}")
