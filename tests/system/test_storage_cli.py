"""The storage commands of the tern CLI against a real ternd (docs/cli.md):
sr-list, vdi-list, vdi-create, vdi-import (PUT /import_raw_vdi), and
vbd-create, on the local Unix socket as root and remote over HTTP."""

import json
import os

import pytest

from storage_helpers import MIB, vdi_file


def ok(r):
    assert r.returncode == 0, (r.args, r.stdout, r.stderr)
    return r.stdout


def test_sr_list(ternd):
    out = ok(ternd.tern("sr-list"))
    header, *rows = out.splitlines()
    assert "CONTENT" in header and "SIZE_MIB" in header
    assert any("Local storage" in r and " user " in r for r in rows), out
    assert any("Boot files" in r and "kernel" in r for r in rows), out
    srs = json.loads(ok(ternd.tern("sr-list", "--json")))
    assert {s["content_type"] for s in srs.values()} == {"user", "kernel"}


@pytest.mark.parametrize("remote", [False, True])
def test_vdi_create_list_vbd(ternd, remote):
    api = ternd.xapi()
    uuid = ok(ternd.tern("vdi-create", "--name", "clidisk", "--size", "12",
                         remote=remote)).strip()
    vdi = api.call("VDI.get_by_uuid", uuid)
    assert api.call("VDI.get_virtual_size", vdi) == str(12 * MIB)
    pool = list(api.call("pool.get_all_records").values())[0]
    assert api.call("VDI.get_SR", vdi) == pool["default_SR"]
    rows = [r for r in ok(ternd.tern("vdi-list", remote=remote)).splitlines()
            if uuid in r]
    assert len(rows) == 1 and "clidisk" in rows[0] and " 12 " in rows[0]
    boot_only = ok(ternd.tern("vdi-list", "--sr", "boot", remote=remote))
    assert uuid not in boot_only and "vmlinuz" in boot_only

    vm = ok(ternd.tern("vm-create", "--name", "clivm", remote=remote)).strip()
    vbd = ok(ternd.tern("vbd-create", vm, uuid, "--bootable",
                        remote=remote)).strip()
    ref = api.call("VBD.get_by_uuid", vbd)
    rec = api.call("VBD.get_record", ref)
    assert rec["VDI"] == vdi and rec["bootable"] is True
    assert rec["userdevice"] == "0" and rec["mode"] == "RW"
    r = ternd.tern("vbd-create", vm, "no-such-vdi", remote=remote)
    assert r.returncode == 1 and "no-such-vdi" in r.stderr


@pytest.mark.parametrize("remote", [False, True])
def test_vdi_import(ternd, tmp_path, remote):
    api = ternd.xapi()
    data = os.urandom(300 * 1024)
    src = tmp_path / "k"
    src.write_bytes(data)
    uuid = ok(ternd.tern("vdi-create", "--sr", "boot", "--name", "mykernel",
                         "--size", "1", remote=remote)).strip()
    ok(ternd.tern("vdi-import", uuid, str(src), remote=remote))
    vdi = api.call("VDI.get_by_uuid", uuid)
    assert vdi_file(api, vdi) == ternd.boot_dir / "mykernel"
    assert (ternd.boot_dir / "mykernel").read_bytes() == data
    # Larger than the VDI: refused, and said so.
    big = tmp_path / "big"
    big.write_bytes(b"z" * (2 * MIB))
    r = ternd.tern("vdi-import", uuid, str(big), remote=remote)
    assert r.returncode != 0 and "413" in r.stderr, r.stderr
    assert (ternd.boot_dir / "mykernel").read_bytes() == data
    # The file names a boot file by its name.
    vm = ok(ternd.tern("vm-create", "--name", "k", "--kernel", "mykernel",
                       remote=remote)).strip()
    assert api.call("VM.get_PV_kernel",
                    api.call("VM.get_by_uuid", vm)) == "mykernel"
    r = ternd.tern("vm-create", "--name", "k", "--kernel", "/boot/vmlinuz",
                   remote=remote)
    assert r.returncode == 2 and "boot SR" in r.stderr
