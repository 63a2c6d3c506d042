"""The tern CLI against a real ternd: on the local Unix socket as root,
and remote over HTTP with a user and a password file."""

import json

import pytest


def ok(r):
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def test_help(ternd):
    out = ok(ternd.tern("--help"))
    for cmd in ("vm-list", "vm-create", "vm-destroy", "vm-param-get",
                "vm-param-set", "host-list", "task-list", "event-watch",
                "vm-start", "vm-console"):
        assert cmd in out
    for cmd in ("vm-list", "vm-create", "vm-param-set"):
        assert "Usage" in ok(ternd.tern(cmd, "--help"))


def test_vm_create_list_param_destroy(ternd):
    api = ternd.xapi()
    uuid = ok(ternd.tern("vm-create", "--name", "cli-vm", "--memory", "64",
                         "--vcpus", "2", "--description", "made by cli")).strip()
    assert len(uuid) == 36
    ref = api.call("VM.get_by_uuid", uuid)
    rec = api.call("VM.get_record", ref)
    assert rec["name_label"] == "cli-vm"
    assert rec["name_description"] == "made by cli"
    assert rec["memory_static_max"] == str(64 << 20)
    assert rec["VCPUs_max"] == "2"

    table = ok(ternd.tern("vm-list"))
    header, *rows = table.splitlines()
    assert "NAME" in header and "POWER" in header
    row = [r for r in rows if uuid in r]
    assert len(row) == 1 and "cli-vm" in row[0] and "Halted" in row[0]

    listed = json.loads(ok(ternd.tern("vm-list", "--json")))
    mine = [v for v in listed if v["uuid"] == uuid]
    assert len(mine) == 1 and mine[0]["name_label"] == "cli-vm"

    assert ok(ternd.tern("vm-param-get", uuid, "name_label")).strip() == "cli-vm"
    assert ok(ternd.tern("vm-param-get", "cli-vm", "memory_static_max")).strip() \
        == str(64 << 20)
    ok(ternd.tern("vm-param-set", uuid, "name_label=renamed",
                  "other_config:color=red"))
    assert api.call("VM.get_name_label", ref) == "renamed"
    assert api.call("VM.get_other_config", ref) == {"color": "red"}
    assert json.loads(ok(ternd.tern("vm-param-get", uuid, "other_config",
                                    "--json"))) == {"color": "red"}

    ok(ternd.tern("vm-destroy", uuid))
    assert ref not in api.call("VM.get_all")
    assert uuid not in ok(ternd.tern("vm-list"))


def test_host_list(ternd):
    api = ternd.xapi()
    host = api.call("session.get_this_host", api.session)
    hrec = api.call("host.get_record", host)
    out = ok(ternd.tern("host-list"))
    assert hrec["uuid"] in out
    hosts = json.loads(ok(ternd.tern("host-list", "--json")))
    assert [h["uuid"] for h in hosts] == [hrec["uuid"]]


def test_task_list(ternd):
    api = ternd.xapi()
    vm = api.call("VM.create", {"name_label": "src"})
    task = api.call("Async.VM.clone", vm, "dst")
    tuuid = api.call("task.get_uuid", task)
    out = ok(ternd.tern("task-list"))
    assert "STATUS" in out.splitlines()[0]
    tasks = json.loads(ok(ternd.tern("task-list", "--json")))
    assert tuuid in [t["uuid"] for t in tasks]
    assert tuuid in out


def test_errors_exit_nonzero_with_message(ternd):
    r = ternd.tern("vm-param-get", "no-such-vm", "uuid")
    assert r.returncode == 1 and "no-such-vm" in r.stderr
    r = ternd.tern("vm-destroy", "00000000-0000-0000-0000-000000000000")
    assert r.returncode != 0 and r.stderr.strip()
    r = ternd.tern("no-such-command")
    assert r.returncode == 2 and r.stderr.strip()
    r = ternd.tern("vm-create")  # --name is required
    assert r.returncode == 2 and r.stderr.strip()
    ok(ternd.tern("vm-create", "--name", "x"))
    r = ternd.tern("vm-param-set", "x", "memory_static_max=lots")
    assert r.returncode in (1, 2) and "memory_static_max" in r.stderr
    # Refused by the server: a running-VM operation on a halted VM.
    r = ternd.tern("vm-pause", "x")
    assert r.returncode == 1 and "VM_BAD_POWER_STATE" in r.stderr
    r = ternd.tern("vm-list", env={"TERN_SOCKET": str(ternd.base / "nosock")})
    assert r.returncode == 3 and r.stderr.strip()


def test_unix_uri(ternd):
    ok(ternd.tern("-c", f"unix://{ternd.socket}", "vm-create", "--name", "u"))
    assert "u" in [v["name_label"] for v in
                   json.loads(ok(ternd.tern("-c", f"unix://{ternd.socket}",
                                            "vm-list", "--json")))]


def test_remote_http(ternd):
    uuid = ok(ternd.tern("vm-create", "--name", "remote", remote=True)).strip()
    assert uuid in ok(ternd.tern("vm-list", remote=True))
    ok(ternd.tern("vm-param-set", uuid, "name_label=remote2", remote=True))
    assert ok(ternd.tern("vm-param-get", uuid, "name_label",
                         remote=True)).strip() == "remote2"
    ok(ternd.tern("vm-destroy", uuid, remote=True))
    assert uuid not in ok(ternd.tern("vm-list", remote=True))


def test_remote_bad_password(ternd):
    pw = ternd.base / "badpw"
    pw.write_text("wrong\n")
    r = ternd.tern("-c", f"http://127.0.0.1:{ternd.port}", "--user", "admin",
                   "--password-file", str(pw), "vm-list")
    assert r.returncode == 3
    assert "SESSION_AUTHENTICATION_FAILED" in r.stderr or "auth" in r.stderr.lower()


def test_remote_read_only_refused(ternd):
    ternd.user_add("viewer", "viewpw", "read-only")
    pw = ternd.base / "viewpw"
    pw.write_text("viewpw\n")
    base = ["-c", f"http://127.0.0.1:{ternd.port}", "--user", "viewer",
            "--password-file", str(pw)]
    ok(ternd.tern(*base, "vm-list"))
    r = ternd.tern(*base, "vm-create", "--name", "no")
    assert r.returncode == 1 and "RBAC_PERMISSION_DENIED" in r.stderr
