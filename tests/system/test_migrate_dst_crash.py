"""A destination ternd killed (-9) while the stream arrives leaves no orphan.

The incoming VM's record is Halted until the switchover, so a restarted
ternd does not re-attach its QEMU; recovery must find that QEMU by its pid
file, kill it, and remove the record and files (docs/migration.md,
"Recovery").  The source, which lost the control channel before its point
of no return, aborts: exactly one copy runs, at the source, and its task
ends with a reason.  The QEMU processes are looked for in /proc by the
VM's uuid, not through ternd's run files, so that a QEMU whose files were
removed is still seen.
"""

import os

from conftest import pid_alive, wait_for
from migration_helpers import (assert_running, boot_guest, hosts, kill9,
                               start_migration, token, transferred, vm_pid,
                               wait_phase, wait_task)

__all__ = ["hosts"]

MIB = 1024 * 1024


def qemu_processes(uuid):
    """Pids of live QEMU processes whose command line names UUID."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu" in cmd.split(" ", 1)[0] and uuid in cmd:
            out.append(int(d))
    return [p for p in out if pid_alive(p)]


def test_destination_ternd_killed_while_receiving(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)

    task = start_migration(a, vm, token(b, uuid), True, {"bandwidth": "2"})
    wait_phase(a.api, task, lambda r: transferred(r) > 2 * MIB, 30,
               "2 MiB transferred")
    qemus = qemu_processes(uuid)
    assert len(qemus) == 2, qemus       # the source's and the incoming one
    incoming = [p for p in qemus if p != pid]
    assert incoming, qemus

    kill9(b.t.proc.pid)
    b.t.proc.wait()
    rec = wait_task(a.api, task, timeout=45)
    print("source task after the destination died:", rec["status"],
          rec["error_info"])
    assert rec["status"] == "failure", rec
    assert rec["error_info"] and rec["error_info"][-1], rec

    b.t.start()
    b.restart_api()
    # Recovery on B: the incoming QEMU is killed, its record and files go.
    wait_for(lambda: not pid_alive(incoming[0]), 20,
             "the incoming QEMU to be killed by recovery")
    wait_for(lambda: b.vm_by_uuid(uuid) is None, 10,
             "the incoming record to be removed")
    assert not (b.t.run_dir / "vms" / uuid).exists(), \
        list((b.t.run_dir / "vms" / uuid).iterdir())
    assert b.vms() == {}

    # Exactly one copy: the source's, in its very QEMU, still counting.
    assert qemu_processes(uuid) == [pid]
    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 3, 15, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st), st[-3:]

    # And the VM can go to the restarted destination afterwards.
    rec = wait_task(a.api, start_migration(a, vm, token(b, uuid), True, {}),
                    timeout=90)
    assert rec["status"] == "success", rec["error_info"]
