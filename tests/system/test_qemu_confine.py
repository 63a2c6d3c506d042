"""QEMU without root's authority: a started VM's QEMU runs as the
unprivileged [qemu] user under its seccomp filter, the per-VM run
directory is that user's group's and nobody else's, a missing user is a
clear refusal; and the console log QEMU writes is capped."""

import os
import pwd
import stat

import pytest

from conftest import XapiFailure, guest_vm_record, wait_for

QEMU_USER = "tern-qemu"


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


@pytest.fixture
def confined(ternd_factory, tmp_path):
    try:
        pwd.getpwnam(QEMU_USER)
    except KeyError:
        pytest.fail(f"user {QEMU_USER} missing: run tools/setup-deps.sh")
    conf = tmp_path / "ternd.conf"
    conf.write_text("[qemu]\nconsole_log_max_kib = 1\n")
    return ternd_factory(extra_args=("--accel", "tcg", "--config", str(conf)))


def start_guest(t, guest, name):
    x = t.xapi()
    vm = x.call("VM.create", guest_vm_record(guest, name=name))
    x.call("VM.start", vm, False, False)
    return x, vm


def test_qemu_runs_unprivileged_and_sandboxed(confined, guest):
    x, vm = start_guest(confined, guest, "confined")
    pid = int(x.call("VM.get_domid", vm))
    st = status_fields(pid)
    want = pwd.getpwnam(QEMU_USER)
    assert [int(u) for u in st["Uid"]] == [want.pw_uid] * 4
    assert [int(g) for g in st["Gid"]] == [want.pw_gid] * 4
    assert st["Seccomp"] == ["2"]
    assert st["NoNewPrivs"] == ["1"]
    # The VM's directory: its group may read, others nothing.
    uuid = x.call("VM.get_uuid", vm)
    vmdir = confined.run_dir / "vms" / uuid
    for d, mode in ((vmdir, 0o750), (vmdir.parent, 0o710)):
        s = os.stat(d)
        assert s.st_gid == want.pw_gid and stat.S_IMODE(s.st_mode) == mode
    # The console still reaches the API, written by the confined QEMU.
    wait_for(lambda: "MEMCHECK" in x.call("VM.get_console_log", vm, 4096),
             60, "memcheck on the console")
    x.call("VM.hard_shutdown", vm)


def test_console_log_is_capped(confined, guest):
    x, vm = start_guest(confined, guest, "chatty")
    uuid = x.call("VM.get_uuid", vm)
    vmdir = confined.run_dir / "vms" / uuid
    old = vmdir / "console.log.old"
    # memcheck writes a line every 300 ms: 1 KiB is passed in seconds.
    wait_for(old.exists, 90, "the console log to be rotated")
    assert old.stat().st_size <= 1024
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    # The live file is emptied by the rotation and stays near the cap.
    wait_for(lambda: (vmdir / "console.log").stat().st_size <= 1024, 10,
             "console.log back under its cap")
    # What the API returns spans both files and ends with the newest line.
    log = x.call("VM.get_console_log", vm, 1500)
    assert 0 < len(log) <= 1500 and "MEMCHECK" in log
    x.call("VM.hard_shutdown", vm)


def test_missing_qemu_user_refuses_start(ternd_factory, tmp_path, guest):
    conf = tmp_path / "nouser.conf"
    conf.write_text("[qemu]\nuser = tern-no-such-user\n")
    t = ternd_factory(extra_args=("--accel", "tcg", "--config", str(conf)))
    x = t.xapi()
    vm = x.call("VM.create", guest_vm_record(guest, name="nouser"))
    with pytest.raises(XapiFailure) as e:
        x.call("VM.start", vm, False, False)
    assert "tern-no-such-user does not exist" in " ".join(e.value.params)
    assert x.call("VM.get_power_state", vm) == "Halted"
