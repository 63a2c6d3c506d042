"""`tern vm-migrate` against two real hosts: managed (tern logs in to both
hosts) and --p2p (tern talks to the source only), plain progress lines when
stdout is not a terminal, and --test, which checks without moving anything.
"""

import re
import subprocess

import pytest

from conftest import SESSION_REPORTS, TERN, sanitizer_note_stderr
from migration_helpers import (Console, assert_continues, assert_gone,
                               assert_no_vm, assert_running, boot_guest,
                               create_guest, hosts, vm_pid)

__all__ = ["hosts"]

ANSI_OR_CR = re.compile(r"\x1b\[|\r")


def tern(a, b, *args, password="adminpw", timeout=120):
    """Runs tern against A's Unix socket (as root), destination B over
    HTTP as admin; stdout and stderr are pipes, not a terminal."""
    pwfile = a.t.base / "dest-pw"
    pwfile.write_text(password + "\n")
    cmd = [str(TERN), "-c", f"unix://{a.t.socket}", "vm-migrate", *args,
           "--to", b.url, "--user", "admin", "--password-file", str(pwfile)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    sanitizer_note_stderr(SESSION_REPORTS, "tern", p.stderr)
    print(f"$ {' '.join(cmd[1:])}\n-> {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def check_plain_output(p):
    assert not ANSI_OR_CR.search(p.stdout), repr(p.stdout[:500])
    lines = p.stdout.splitlines()
    progress = [l for l in lines if l.startswith("progress ")]
    assert progress, p.stdout
    for l in progress:
        # "progress N%" then only the figures reported so far, key=value.
        assert re.match(r"^progress \d+%( [a-z_]+=\S+)*$", l), l
    assert any("phase=" in l for l in progress), progress
    done = [l for l in lines if l.startswith("migrated: ")]
    assert len(done) == 1, p.stdout
    for key in ("total_ms", "downtime_ms", "blackout_ms", "bytes"):
        assert key in p.stdout, (key, p.stdout)
    return done[0]


@pytest.mark.parametrize("control", ["managed", "p2p"])
def test_cli_live_migration(hosts, guest, control):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, name="cli-guest", lines=2)
    pid = vm_pid(a, vm)

    args = ["cli-guest"]
    if control == "p2p":
        args += ["--p2p", "--direct", "--rename", "cli-moved"]
    p = tern(a, b, *args)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip() == "", p.stderr
    done = check_plain_output(p)
    assert uuid in done or b.vm_by_uuid(uuid) in done, done

    ref = b.vm_by_uuid(uuid)
    rec = assert_running(b, ref)
    assert rec["name_label"] == ("cli-moved" if control == "p2p"
                                 else "cli-guest")
    assert_continues(con, Console(b.console_path(uuid)))
    assert_gone(a, uuid, pid)


def test_cli_test_on_good_destination(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, name="cli-guest", lines=1)
    pid = vm_pid(a, vm)
    for extra in ([], ["--p2p"]):
        p = tern(a, b, "cli-guest", "--test", *extra)
        assert p.returncode == 0, (extra, p.stdout, p.stderr)
        assert not ANSI_OR_CR.search(p.stdout)
        assert "migrated:" not in p.stdout
    # Nothing moved.
    assert_running(a, vm, pid)
    con.wait_status(len(con.status()) + 1, 10, "memcheck on A")
    assert_no_vm(b, uuid)
    assert b.vms() == {}


def test_cli_offline_rename(hosts, guest):
    a, b = hosts
    vm = create_guest(a, guest, name="cold")
    uuid = a.api.call("VM.get_uuid", vm)
    p = tern(a, b, "cold", "--offline", "--rename", "cold-moved")
    assert p.returncode == 0, p.stderr
    assert "migrated: " in p.stdout
    assert not ANSI_OR_CR.search(p.stdout)
    rec = b.api.call("VM.get_record", b.vm_by_uuid(uuid))
    assert (rec["name_label"], rec["power_state"]) == ("cold-moved", "Halted")
    assert_no_vm(a, uuid)


def test_cli_wrong_destination_password(hosts, guest):
    a, b = hosts
    vm, uuid, _ = boot_guest(a, guest, name="cli-guest", lines=1)
    pid = vm_pid(a, vm)
    p = tern(a, b, "cli-guest", password="wrong")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert p.stderr.startswith("tern: "), p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert_running(a, vm, pid)
    assert_no_vm(b, uuid)
