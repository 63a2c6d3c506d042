"""Prediction and `tern vm-migrate --test` (docs/migration.md,
docs/cli.md): nothing moves, and the user learns either how the migration
would go or every reason it cannot.

Host A is reached on its Unix socket; host B serves HTTPS (its own
self-signed certificate, pinned with --to-fingerprint) and has a user of
its own for the CLI.  One guest on A serves every test.
"""

import json
import shutil
import subprocess

import pytest

from conftest import (MIB, SESSION_REPORTS, TERN, TIME_SCALE, Ternd,
                      close_all, guest_vm_record, sanitizer_note_stderr)
from migration_helpers import (Console, Host, assert_no_vm, assert_running,
                               memcheck_args, short_dir, token, vm_pid)
from policy_helpers import (CPU_MODEL, SMALL_CPU, TlsTernd, limit_cpu,
                            limit_memory, unlimit_cpu, unlimit_memory)

USER, PASSWORD = "mover", "mover-pw"
PREDICTION_KEYS = {"converges", "iterations", "total_s", "downtime_ms",
                   "rate_mib_s", "dirty_mib_s", "memory_mib", "probe_mib_s",
                   "verdict"}


class Env:
    pass


@pytest.fixture(scope="module")
def env(guest):
    base = short_dir()
    e = Env()
    ts = []
    ok = False
    try:
        ts.append(Ternd(base / "a"))
        ts.append(TlsTernd(base / "b"))
        ts[1].user_add(USER, PASSWORD, "pool-admin")
        for t in ts:
            t.start()
        e.ta, e.tb = ts
        e.a, e.b = Host(ts[0], "A"), Host(ts[1], "B")
        rec = guest_vm_record(guest, name="vm1", memory_mib=128,
                              args=memcheck_args(16, 4, 300))
        rec["platform"] = {"cpu": CPU_MODEL}
        e.vm = e.a.api.call("VM.create", rec)
        e.a.api.call("VM.start", e.vm, False, False)
        e.uuid = e.a.api.call("VM.get_uuid", e.vm)
        e.pid = vm_pid(e.a, e.vm)
        e.con = Console(e.a.console_path(e.uuid))
        e.con.wait_status(1, 40, "the guest to boot on A")
        e.pwfile = base / "pw"
        e.pwfile.write_text(PASSWORD + "\n")
        yield e
        ok = True
    finally:
        close_all(ts)
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            for t in ts:
                print(f"\n--- {t.log_path} (kept) ---\n"
                      + "\n".join(t.log_text().splitlines()[-40:]))


def tern_test(env, *extra):
    cmd = [str(TERN), "-c", f"unix://{env.ta.socket}", "vm-migrate", "vm1",
           "--to", f"https://127.0.0.1:{env.tb.port}", "--user", USER,
           "--password-file", str(env.pwfile),
           "--to-fingerprint", env.tb.fingerprint(), "--test", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=60 * TIME_SCALE)
    sanitizer_note_stderr(SESSION_REPORTS, "tern", p.stderr)
    print("$", " ".join(cmd), f"\n-> {p.returncode}\nstdout:\n{p.stdout}"
          f"stderr:\n{p.stderr}")
    return p


def assert_nothing_moved(env):
    assert_running(env.a, env.vm, env.pid)
    n = len(env.con.status())
    st = env.con.wait_status(n + 1, 15, "memcheck to go on at the source")
    assert all(s["errors"] == "0" for s in st), st[-3:]
    assert_no_vm(env.b, env.uuid)
    assert env.b.vms() == {}


def test_prediction_on_a_healthy_destination(env):
    res = env.a.api.call("VM.migrate_check", env.vm, token(env.b, env.uuid),
                         {})
    print("migrate_check:", res)
    assert res["blockers"] == [], res
    p = res["prediction"]
    assert PREDICTION_KEYS <= set(p), p
    assert p["converges"] is True, p
    assert float(p["total_s"]) > 0, p
    assert int(float(p["iterations"])) >= 1, p
    assert float(p["rate_mib_s"]) > 0 and float(p["probe_mib_s"]) > 0, p
    assert float(p["memory_mib"]) > 0, p
    assert p["verdict"] == "converges", p
    assert_nothing_moved(env)


def test_cli_test_prints_the_prediction(env):
    p = tern_test(env)
    assert p.returncode == 0, p
    out = p.stdout
    assert "no blockers; prediction:" in out, out
    lines = dict(l.strip().split(": ", 1) for l in out.splitlines()
                 if l.startswith("  ") and ": " in l)
    assert PREDICTION_KEYS <= set(lines), lines
    assert lines["converges"] == "true", lines
    assert float(lines["total_s"]) > 0, lines
    assert "VM can migrate" in out, out
    assert_nothing_moved(env)


def test_cli_test_prints_every_blocker_with_its_fix(env):
    limit_cpu(env.b, SMALL_CPU)
    limit_memory(env.b, 64 * MIB)
    try:
        blockers = env.a.api.call("VM.migrate_check", env.vm,
                                  token(env.b, env.uuid), {})["blockers"]
        assert [b["code"] for b in blockers] == [
            "VM_INCOMPATIBLE_WITH_THIS_HOST", "HOST_NOT_ENOUGH_FREE_MEMORY"], \
            blockers
        p = tern_test(env)
        assert p.returncode == 1, p
        out = p.stdout
        header = out.splitlines()[0].split()
        assert header == ["CODE", "OBJECTS", "MESSAGE", "FIX"], out
        for b in blockers:
            row = [l for l in out.splitlines() if l.startswith(b["code"])]
            assert len(row) == 1, (b["code"], out)
            assert b["message"] in row[0], (b["message"], row[0])
            assert b["fix"] in row[0], (b["fix"], row[0])
        assert "prediction" not in out and "VM can migrate" not in out, out
        # The XAPI error of assert_can_migrate goes to stderr.
        assert "VM_INCOMPATIBLE_WITH_THIS_HOST" in p.stderr, p.stderr

        # --json: the same blockers as data.
        pj = tern_test(env, "--json")
        assert pj.returncode == 1, pj
        got = json.loads(pj.stdout)
        assert got["can_migrate"] is False, got
        assert [b["code"] for b in got["check"]["blockers"]] == \
            [b["code"] for b in blockers], got
        assert got["error"][0] == "VM_INCOMPATIBLE_WITH_THIS_HOST", got
    finally:
        unlimit_cpu(env.b)
        unlimit_memory(env.b)
    assert_nothing_moved(env)
