"""PUT /import_raw_vdi (XAPI's HTTP upload, docs/storage.md): the bytes
of a VDI, streamed to its file.  A raw VDI of the boot SR becomes exactly
what was sent (a kernel a VM then boots from); a qcow2 VDI is filled from
raw bytes; more than virtual_size is refused from the headers (413), a bad
or read-only session is refused (403), and nothing is written."""

import http.client
import os
import subprocess

import pytest

from conftest import guest_vm_record, wait_for
from storage_helpers import MIB, boot_sr, local_sr, make_vdi, vdi_file


@pytest.fixture
def rt(ternd_factory):
    return ternd_factory(users=(("admin", "adminpw", "pool-admin"),
                                ("ro", "ropw", "read-only")))


def put(t, session, vdi, body, length=None):
    c = http.client.HTTPConnection("127.0.0.1", t.port, timeout=30)
    c.putrequest("PUT", f"/import_raw_vdi?session_id={session}&vdi={vdi}")
    c.putheader("Content-Length", str(len(body) if length is None
                                      else length))
    c.endheaders()
    try:
        c.send(body)
    except OSError:
        pass
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


def test_upload_a_kernel_and_boot_it(rt, guest):
    api = rt.xapi()
    kernel = open(guest[0], "rb").read()
    vdi = api.call("VDI.create", {"SR": boot_sr(api), "name_label": "k2",
                                  "virtual_size": str(len(kernel) + MIB),
                                  "type": "system"})
    assert api.call("VDI.get_location", vdi) == "k2"
    assert put(rt, api.session, vdi, kernel) == 200
    path = vdi_file(api, vdi)
    assert path == rt.boot_dir / "k2"
    assert path.read_bytes() == kernel
    assert api.call("VDI.get_virtual_size", vdi) == str(len(kernel))

    vm = api.call("VM.create", dict(guest_vm_record(guest, name="k2"),
                                    PV_kernel="k2"))
    api.call("VM.start", vm, False, False)
    wait_for(lambda: "MEMCHECK seq=" in api.call("VM.get_console_log", vm,
                                                 4000),
             40, "the uploaded kernel to boot")
    api.call("VM.hard_shutdown", vm)


def test_cap_and_refusals(rt):
    api, ro = rt.xapi(), rt.xapi("ro", "ropw")
    vdi = api.call("VDI.create", {"SR": boot_sr(api), "name_label": "small",
                                  "virtual_size": "1000", "type": "system"})
    path = vdi_file(api, vdi)
    assert put(rt, api.session, vdi, b"x" * 1001) == 413
    assert put(rt, "OpaqueRef:nope", vdi, b"x" * 10) == 403
    assert put(rt, ro.session, vdi, b"x" * 10) == 403
    assert put(rt, api.session, "OpaqueRef:NULL", b"x" * 10) == 404
    assert path.read_bytes() == b"\0" * 1000
    assert put(rt, api.session, vdi, b"y" * 1000) == 200
    assert path.read_bytes() == b"y" * 1000
    # ternd still answers.
    assert api.call("VDI.get_virtual_size", vdi) == "1000"


def test_upload_into_qcow2(rt, tmp_path):
    api = rt.xapi()
    vdi = make_vdi(api, local_sr(api), 4)
    data = os.urandom(MIB) + b"\0" * MIB + b"tail" * 1024
    assert put(rt, api.session, vdi, data) == 200
    out = tmp_path / "out.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw",
                    str(vdi_file(api, vdi)), str(out)], check=True)
    got = out.read_bytes()
    assert len(got) == 4 * MIB
    assert got[:len(data)] == data and got[len(data):].count(0) == \
        len(got) - len(data)
    assert api.call("VDI.get_virtual_size", vdi) == str(4 * MIB)
    assert not [n for n in os.listdir(vdi_file(api, vdi).parent)
                if n.startswith(".import-")]
