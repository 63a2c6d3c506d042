"""JSON-RPC 1.0 and 2.0 at POST /jsonrpc: reply shapes, the exact
Content-Type, and one method table shared with XML-RPC."""

import json

import pytest

from conftest import JsonRpc, XapiFailure


def post(ternd, msg):
    status, resp, data = JsonRpc(ternd.port).request(msg)
    assert status == 200, (status, data)
    assert resp.getheader("Content-Type") == "application/json"
    return json.loads(data)


def login_msg(version, rid=7, pw="adminpw"):
    msg = {"method": "session.login_with_password",
           "params": ["admin", pw, "1.0", "t"], "id": rid}
    if version == "2.0":
        msg["jsonrpc"] = "2.0"
    return msg


def test_v1_success_shape(ternd):
    reply = post(ternd, login_msg("1.0", rid=42))
    assert set(reply) == {"result", "error", "id"}
    assert reply["error"] is None
    assert reply["id"] == 42
    assert reply["result"].startswith("OpaqueRef:")


def test_v1_error_shape(ternd):
    reply = post(ternd, login_msg("1.0", rid="abc", pw="wrong"))
    assert reply["result"] is None
    assert reply["id"] == "abc"
    assert isinstance(reply["error"], list)
    assert reply["error"][0] == "SESSION_AUTHENTICATION_FAILED"
    assert all(isinstance(p, str) for p in reply["error"])


def test_v2_success_shape(ternd):
    reply = post(ternd, login_msg("2.0", rid=3))
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == 3
    assert "error" not in reply
    assert reply["result"].startswith("OpaqueRef:")


def test_v2_error_shape(ternd):
    s = post(ternd, login_msg("2.0"))["result"]
    reply = post(ternd, {"jsonrpc": "2.0", "method": "VM.get_record",
                         "params": [s, "OpaqueRef:nope"], "id": 9})
    assert reply["jsonrpc"] == "2.0" and reply["id"] == 9
    assert "result" not in reply
    err = reply["error"]
    assert isinstance(err["code"], int) and err["code"] != 0
    assert err["message"] == "HANDLE_INVALID"
    assert err["data"] == ["VM", "OpaqueRef:nope"]


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_crud_over_jsonrpc(ternd, version):
    j = ternd.jsonrpc(version)
    vm = j.call("VM.create", {"name_label": "json-vm", "VCPUs_max": "2"})
    rec = j.call("VM.get_record", vm)
    assert rec["name_label"] == "json-vm"
    j.call("VM.add_to_other_config", vm, "a", "b")
    assert j.call("VM.get_other_config", vm) == {"a": "b"}
    assert vm in j.call("VM.get_all_records")
    j.call("VM.destroy", vm)
    assert vm not in j.call("VM.get_all")


def test_session_shared_between_encodings(ternd):
    x = ternd.xapi()
    vm = x.call("VM.create", {"name_label": "shared"})
    j = JsonRpc(ternd.port, "2.0", session=x.session)
    assert j.call("VM.get_name_label", vm) == "shared"
    j.call("VM.set_name_label", vm, "renamed")
    assert x.call("VM.get_name_label", vm) == "renamed"
    # And the other way round.
    j2 = ternd.jsonrpc("1.0")
    x.session = j2.session
    assert x.call("VM.get_name_label", vm) == "renamed"
    j2.call("session.logout")
    with pytest.raises(XapiFailure) as e:
        x.call("VM.get_all")
    assert e.value.code == "SESSION_INVALID"


def test_same_method_table(ternd):
    x = ternd.xapi()
    j = ternd.jsonrpc("2.0")
    xm = set(x.raw("system.listMethods"))
    jm = set(j.raw("system.listMethods"))
    assert xm == jm
    assert "Async.VM.start" in jm
