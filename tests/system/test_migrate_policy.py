"""A guest that dirties memory faster than the bandwidth cap either
completes under the convergence policy or aborts cleanly, within
max_duration (docs/migration.md, "Convergence policy").

The memcheck guest rewrites RATE MiB/s of its MIB MiB, four times what the
cap lets through: at the cap the migration can never converge.

- With the ladder (escalate=true, the default) the cap is lifted at 50% of
  max_duration, the stream catches up and the VM arrives, memory intact,
  before max_duration.
- With escalate=false only the last rung is left: at max_duration the
  migration aborts and the VM goes on running on the source, in the same
  QEMU; the destination has nothing.
"""

import time

import pytest


from migration_helpers import (Console, assert_continues, assert_no_vm,
                               assert_running, boot_guest, hosts,
                               start_migration, token, vm_pid, wait_task)

__all__ = ["hosts"]

MIB_DIRTY = 64          # memcheck.mib
RATE = 32               # memcheck.rate, MiB/s rewritten
BANDWIDTH = 8           # MiB/s, the cap
SLACK = 3.0             # s: polling, the abort itself, a loaded machine


def boot(a, guest):
    # 160 MiB: the guest's kernel, its modules and a 64 MiB memcheck do
    # not fit in 128 (the OOM killer takes memcheck).
    return boot_guest(a, guest, lines=2, memory_mib=160, mib=MIB_DIRTY,
                      rate=RATE, interval_ms=300)


def migrate(a, b, vm, uuid, max_duration, **extra):
    opts = {"bandwidth": str(BANDWIDTH), "max_duration": str(max_duration),
            "secure": "false"}
    opts.update(extra)
    seen = []
    t0 = time.monotonic()
    task = start_migration(a, vm, token(b, uuid), True, opts)
    rec = wait_task(a.api, task, timeout=max_duration + 20,
                    on_poll=lambda r: seen.append(
                        (round(time.monotonic() - t0, 2),
                         r["other_config"].get("policy_steps", ""),
                         r["other_config"].get("phase"))))
    elapsed = time.monotonic() - t0
    steps = [s for s in rec["other_config"].get("policy_steps", "").split(",")
             if s]
    # When each rung first showed in the task.
    first = {}
    for at, st, _ in seen:
        for s in filter(None, st.split(",")):
            first.setdefault(s, at)
    print(f"elapsed {elapsed:.2f}s status {rec['status']} steps {steps} "
          f"rungs at {first} error {rec['error_info']}\n"
          f"other_config {rec['other_config']}")
    return rec, elapsed, steps, first


# 20 s: the cap is lifted at 10 s and the VM arrives at about 11 s, with
# the control channel quiet for the whole transfer.
@pytest.mark.parametrize("max_duration", [20])
def test_completes_under_policy(hosts, guest, max_duration):
    MAX_DURATION = max_duration
    a, b = hosts
    vm, uuid, src_con = boot(a, guest)

    rec, elapsed, steps, first = migrate(a, b, vm, uuid, max_duration)

    assert rec["status"] == "success", (rec["error_info"], rec["other_config"])
    # It needed the ladder: the cap alone never converges ...
    assert "lift-bandwidth" in steps, steps
    assert "abort" not in steps, steps
    assert first["lift-bandwidth"] >= 0.5 * MAX_DURATION - 0.5, first
    assert elapsed >= 0.5 * MAX_DURATION, elapsed
    # ... and finished within max_duration.
    assert elapsed < MAX_DURATION + SLACK, elapsed
    # The prediction at the start said so too.
    assert rec["other_config"].get("predicted_converges") == "false", \
        rec["other_config"]

    # The VM runs on B, with its memory intact.
    new_vm = b.vm_by_uuid(uuid)
    assert new_vm is not None
    assert_running(b, new_vm)
    dst_con = Console(b.console_path(uuid))
    dst_con.wait_status(3, 30, "3 MEMCHECK lines on the destination")
    print("source console tail:", repr(src_con.text()[-400:]))
    print("destination console head:", repr(dst_con.text()[:400]))
    assert_continues(src_con, dst_con, new_lines=3)
    assert a.vm_by_uuid(uuid) is None


@pytest.mark.parametrize("max_duration", [
    8])
def test_without_escalation_aborts_at_max_duration(hosts, guest,
                                                   max_duration):
    MAX_DURATION = max_duration
    a, b = hosts
    vm, uuid, con = boot(a, guest)
    pid = vm_pid(a, vm)

    rec, elapsed, steps, first = migrate(a, b, vm, uuid, max_duration,
                                         escalate="false")

    assert rec["status"] == "failure", (rec["status"], rec["other_config"])
    assert rec["error_info"][0] == "VM_MIGRATE_FAILED", rec["error_info"]
    assert "max_duration" in " ".join(rec["error_info"]), rec["error_info"]
    assert steps == ["abort"], steps
    assert MAX_DURATION - 0.5 <= elapsed < MAX_DURATION + SLACK, elapsed

    # The VM never left: same QEMU, running, memcheck counting on, intact.
    assert_running(a, vm, pid)
    n = len(con.status())
    st = con.wait_status(n + 3, 15, "memcheck to go on at the source")
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert all(s["errors"] == "0" for s in st), st[-3:]
    assert a.api.call("VM.get_current_operations", vm) == {}
    # The destination has nothing.
    assert_no_vm(b, uuid)
    assert b.vms() == {}
