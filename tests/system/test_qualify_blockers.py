"""A destination that cannot run the VM says every reason at once, before
anything stops (docs/qualification.md).

One machine simulates a destination B that lacks three things the VM on A
needs, separately and all together:

- a CPU: B is limited to qemu64 (`other_config:cpu_model_max`) and the VM
  runs with `platform:cpu=Nehalem`, whose popcnt, sse4.1, sse4.2 and ssse3
  qemu64 lacks;
- memory: B offers 64 MiB free (`other_config:memory_total`) and the VM
  has 128 MiB;
- its kernel: the VM boots from the guest's kernel in A's boot SR, and
  the file is taken out of B's boot SR (docs/storage.md); linking it in
  again gives B the kernel back.  (A file the
  source lacks too also blocks a live migration, since B's QEMU starts
  with it: tests/unit/test-migrate-qualify.c, files-missing-everywhere.)

The limits are read at every check, so one VM serves every test: each
test sets the limits it needs and the fixture lifts them afterwards.
"""

import shutil

import pytest

from conftest import MIB, XapiFailure, close_all, guest_vm_record
from migration_helpers import (Console, HidingTernd, Host, assert_no_vm,
                               assert_running, memcheck_args, short_dir,
                               start_migration, token, vm_pid, wait_task)
from policy_helpers import (CPU_MODEL, CPU_MODEL_MISSING, SMALL_CPU,
                            BootFile, assert_blocker_complete,
                            limit_cpu, limit_memory, unlimit_cpu,
                            unlimit_memory, xapi_error)

VM_MIB = 128
FREE_MIB = 64

# The order of the report (docs/qualification.md, "The checks").
ORDER = ["cpu", "memory", "files"]
CODES = {"cpu": "VM_INCOMPATIBLE_WITH_THIS_HOST",
         "memory": "HOST_NOT_ENOUGH_FREE_MEMORY",
         "files": "VM_FILE_MISSING"}


class Env:
    pass


@pytest.fixture(scope="module")
def env(guest):
    base = short_dir()
    ts = []
    e = Env()
    e.kernel = BootFile()
    ok = False
    try:
        for name, hide in (("a", ()), ("b", ())):
            t = HidingTernd(base / name, hide)
            ts.append(t)
            t.start()
        e.kernel.ternd_b = ts[1]
        e.kernel.put_on_b()
        e.a, e.b = Host(ts[0], "A"), Host(ts[1], "B")
        rec = guest_vm_record(guest, name="vm1", memory_mib=VM_MIB,
                              args=memcheck_args(16, 4, 300))
        rec["PV_kernel"] = str(e.kernel.path)
        rec["platform"] = {"cpu": CPU_MODEL}
        e.vm = e.a.api.call("VM.create", rec)
        e.a.api.call("VM.start", e.vm, False, False)
        e.uuid = e.a.api.call("VM.get_uuid", e.vm)
        e.pid = vm_pid(e.a, e.vm)
        e.con = Console(e.a.console_path(e.uuid))
        e.con.wait_status(1, 40, "the guest to boot on A")
        e.b_ref = e.b.host_ref()
        yield e
        ok = True
    finally:
        close_all(ts)
        e.kernel.cleanup()
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            for t in ts:
                print(f"\n--- {t.log_path} (kept) ---\n"
                      + "\n".join(t.log_text().splitlines()[-40:]))


@pytest.fixture
def limits(env):
    """limits(*checks) makes B fail those checks; all are lifted after."""
    def apply(*checks):
        if "cpu" in checks:
            limit_cpu(env.b, SMALL_CPU)
        if "memory" in checks:
            limit_memory(env.b, FREE_MIB * MIB)
        if "files" in checks:
            env.kernel.remove_from_b()
    yield apply
    unlimit_cpu(env.b)
    unlimit_memory(env.b)
    env.kernel.put_on_b()


def check(env, dest_host=None):
    """VM.migrate_check against B (or DEST_HOST) with a fresh token."""
    dst = dest_host or env.b
    return env.a.api.call("VM.migrate_check", env.vm, token(dst, env.uuid),
                          {})


def assert_blocker(env, b, chk):
    """The blocker of check CHK, as docs/qualification.md describes it."""
    assert_blocker_complete(b)
    assert b["code"] == CODES[chk], b
    assert b["check"] == chk, b
    objs = [str(o) for o in b["objects"]]
    if chk == "cpu":
        assert objs[0] == env.b_ref, b
        assert objs[1] == CPU_MODEL, b
        assert objs[2:] == sorted(objs[2:]), b
        assert set(CPU_MODEL_MISSING) <= set(objs[2:]), b
        for f in CPU_MODEL_MISSING:
            assert f in b["message"] and f in b["fix"], b
        assert CPU_MODEL in b["message"] and SMALL_CPU in b["message"], b
    elif chk == "memory":
        assert [int(o) for o in objs] == [VM_MIB * MIB, FREE_MIB * MIB], b
        assert f"{FREE_MIB} MiB" in b["message"], b
        assert f"{VM_MIB} MiB" in b["message"], b
    else:
        assert objs == [str(env.kernel.path), "kernel"], b
        assert str(env.kernel.path) in b["message"], b
        assert str(env.kernel.path) in b["fix"], b


def assert_untouched(env):
    """The VM runs on A in the same QEMU, memcheck counts on without error,
    and B has neither a record nor a QEMU for it."""
    assert_running(env.a, env.vm, env.pid)
    n = len(env.con.status())
    st = env.con.wait_status(n + 2, 15, "memcheck to go on at the source")
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert all(s["errors"] == "0" for s in st), st[-3:]
    assert_no_vm(env.b, env.uuid)
    assert env.b.vms() == {}
    assert env.a.api.call("VM.get_current_operations", env.vm) == {}


def send_error(env):
    """Async.VM.migrate_send to B: must fail before any transfer; returns
    the error description."""
    phases = []
    try:
        task = start_migration(env.a, env.vm, token(env.b, env.uuid), True, {})
    except XapiFailure as e:
        return e.desc
    rec = wait_task(env.a.api, task, timeout=30, on_poll=lambda r:
                    phases.append(r["other_config"].get("phase")))
    assert rec["status"] == "failure", (rec["status"], rec["other_config"])
    assert int(rec["other_config"].get("transferred_bytes", "0") or 0) == 0
    assert not {"transfer", "switchover", "confirm"} & set(phases), phases
    return rec["error_info"]


def test_every_blocker_at_once(env, limits):
    limits("cpu", "memory", "files")

    # The extension call: the whole list as data, in the report's order.
    res = check(env)
    print("migrate_check:", res)
    blockers = res["blockers"]
    assert [b["check"] for b in blockers] == ORDER, blockers
    for b in blockers:
        assert_blocker(env, b, b["check"])
    assert "prediction" not in res, res

    # The XAPI call: the first blocker as a well-formed XAPI error, then one
    # "CODE: message" per further blocker.
    first = blockers[0]
    err = xapi_error(env.a.api.call, "VM.assert_can_migrate", env.vm,
                     token(env.b, env.uuid), True, {}, {}, {})
    print("assert_can_migrate:", err)
    assert err[0] == first["code"], err
    assert len(err) == 1 + 3 + 2, err            # vm, host, reason; +2
    assert err[2] == env.b_ref, err
    assert err[3] == first["message"], err
    assert err[4:] == [f"{b['code']}: {b['message']}" for b in blockers[1:]], err

    # The migration itself is refused with the same reasons, and nothing
    # has stopped or started anywhere.
    err = send_error(env)
    print("migrate_send:", err)
    assert err[0] == first["code"], err
    text = " ".join(map(str, err))
    for b in blockers:
        assert b["message"] in text, (b["message"], err)
    assert_untouched(env)


# XAPI parameters of each code (docs/qualification.md): (count, checker).
@pytest.mark.parametrize("chk", ORDER)
def test_single_blocker(env, limits, chk):
    limits(chk)
    res = check(env)
    print("migrate_check:", res)
    assert [b["check"] for b in res["blockers"]] == [chk], res
    b = res["blockers"][0]
    assert_blocker(env, b, chk)

    err = xapi_error(env.a.api.call, "VM.assert_can_migrate", env.vm,
                     token(env.b, env.uuid), True, {}, {}, {})
    print("assert_can_migrate:", err)
    assert err[0] == CODES[chk], err
    if chk == "cpu":
        assert err[2:] == [env.b_ref, b["message"]], err
    elif chk == "memory":
        assert [int(x) for x in err[1:]] == [VM_MIB * MIB, FREE_MIB * MIB], err
    else:
        assert err[2:] == [b["message"]], err   # vm, message: no extras

    err = send_error(env)
    assert err[0] == CODES[chk], err
    assert_untouched(env)


def test_no_limits_no_blockers(env, limits):
    """The control: with the limits lifted B qualifies the same VM (so the
    blockers above come from the limits, not from the set-up)."""
    limits()
    res = check(env)
    print("migrate_check:", res)
    assert res["blockers"] == [], res
    assert res["prediction"]["converges"] is True, res


def test_same_host_refused(env):
    res = check(env, dest_host=env.a)
    print("migrate_check to itself:", res)
    blockers = res["blockers"]
    assert blockers and blockers[0]["check"] == "same_host", blockers
    b = blockers[0]
    assert_blocker_complete(b)
    assert b["code"] == "OPERATION_NOT_ALLOWED", b
    assert env.a.host_ref() in [str(o) for o in b["objects"]], b

    err = xapi_error(env.a.api.call, "VM.assert_can_migrate", env.vm,
                     token(env.a, env.uuid), True, {}, {}, {})
    assert err[0] == "OPERATION_NOT_ALLOWED", err
    assert err[1] == b["message"], err

    try:
        task = start_migration(env.a, env.vm, token(env.a, env.uuid), True, {})
    except XapiFailure as e:
        err = e.desc
    else:
        rec = wait_task(env.a.api, task, timeout=30)
        assert rec["status"] == "failure", rec
        err = rec["error_info"]
    print("migrate_send to itself:", err)
    assert err[0] == "OPERATION_NOT_ALLOWED", err
    assert_running(env.a, env.vm, env.pid)
    assert list(env.a.vms()) == [env.uuid]
    n = len(env.con.status())
    env.con.wait_status(n + 2, 15, "memcheck to go on")


@pytest.mark.parametrize("chk", ["cpu", "files"])
def test_xapi_error_names_the_vm(env, limits, chk):
    """VM_INCOMPATIBLE_WITH_THIS_HOST and VM_FILE_MISSING carry the VM as
    their first XAPI parameter (docs/qualification.md: "vm", the caller's
    VM ref)."""
    limits(chk)
    err = xapi_error(env.a.api.call, "VM.assert_can_migrate", env.vm,
                     token(env.b, env.uuid), True, {}, {}, {})
    print("assert_can_migrate:", err)
    assert err[0] == CODES[chk], err
    assert err[1] == env.vm, err
