"""XML-RPC with Python's own xmlrpc.client: login, VM records from create
to destroy, the pool of one, the host's facts, introspection."""

import re
import xmlrpc.client

import pytest

from conftest import XapiFailure, wait_for, xcall


def test_login_returns_opaque_ref(ternd):
    proxy = xmlrpc.client.ServerProxy(ternd.url)
    s = xcall(proxy, "session.login_with_password", "admin", "adminpw",
              "1.0", "tests")
    assert s.startswith("OpaqueRef:") and s != "OpaqueRef:NULL"
    reply = proxy.session.login_with_password("admin", "wrong", "1.0", "t")
    assert reply["Status"] == "Failure"
    assert reply["ErrorDescription"][0] == "SESSION_AUTHENTICATION_FAILED"


def test_vm_create_defaults_and_get_record(api):
    vm = api.call("VM.create", {"name_label": "alpha"})
    assert vm.startswith("OpaqueRef:")
    rec = api.call("VM.get_record", vm)
    assert rec["name_label"] == "alpha"
    assert rec["power_state"] == "Halted"
    assert rec["name_description"] == ""
    assert rec["tags"] == [] and rec["other_config"] == {}
    assert rec["is_a_template"] is False
    # XAPI sends int fields as strings over XML-RPC.
    assert isinstance(rec["memory_static_max"], str)
    assert int(rec["memory_static_max"]) > 0
    assert int(rec["VCPUs_max"]) >= 1
    assert len(rec["uuid"]) == 36
    assert api.call("VM.get_name_label", vm) == "alpha"
    assert api.call("VM.get_uuid", vm) == rec["uuid"]


def test_vm_create_with_given_fields(api):
    vm = api.call("VM.create", {"name_label": "beta",
                                "memory_static_max": str(64 << 20),
                                "VCPUs_max": "2",
                                "other_config": {"k": "v"}})
    rec = api.call("VM.get_record", vm)
    assert rec["memory_static_max"] == str(64 << 20)
    assert rec["VCPUs_max"] == "2"
    assert rec["other_config"] == {"k": "v"}


def test_get_all_records(api):
    refs = {api.call("VM.create", {"name_label": f"vm{i}"}) for i in range(3)}
    allrec = api.call("VM.get_all_records")
    assert refs <= set(allrec)
    assert {allrec[r]["name_label"] for r in refs} == {"vm0", "vm1", "vm2"}
    assert refs <= set(api.call("VM.get_all"))


def test_setters(api):
    vm = api.call("VM.create", {"name_label": "gamma"})
    api.call("VM.set_name_label", vm, "delta")
    api.call("VM.set_name_description", vm, "a test VM")
    api.call("VM.set_tags", vm, ["t1", "t2"])
    api.call("VM.add_to_other_config", vm, "color", "blue")
    api.call("VM.add_to_other_config", vm, "size", "big")
    api.call("VM.remove_from_other_config", vm, "size")
    rec = api.call("VM.get_record", vm)
    assert rec["name_label"] == "delta"
    assert rec["name_description"] == "a test VM"
    assert sorted(rec["tags"]) == ["t1", "t2"]
    assert rec["other_config"] == {"color": "blue"}
    assert api.call("VM.get_other_config", vm) == {"color": "blue"}


def test_get_by_uuid_and_name_label(api):
    vm = api.call("VM.create", {"name_label": "findme"})
    other = api.call("VM.create", {"name_label": "notme"})
    uuid = api.call("VM.get_uuid", vm)
    assert api.call("VM.get_by_uuid", uuid) == vm
    assert api.call("VM.get_by_name_label", "findme") == [vm]
    assert api.call("VM.get_by_name_label", "nobody") == []
    assert other not in api.call("VM.get_by_name_label", "findme")
    with pytest.raises(XapiFailure) as e:
        api.call("VM.get_by_uuid", "00000000-0000-0000-0000-000000000000")
    assert e.value.code == "UUID_INVALID"


def test_destroy(api):
    vm = api.call("VM.create", {"name_label": "doomed"})
    api.call("VM.destroy", vm)
    assert vm not in api.call("VM.get_all")
    with pytest.raises(XapiFailure) as e:
        api.call("VM.get_record", vm)
    assert e.value.desc == ["HANDLE_INVALID", "VM", vm]


def test_pool_of_one_master_is_this_host(api):
    pools = api.call("pool.get_all_records")
    assert len(pools) == 1
    (pool,) = pools.values()
    host = api.call("session.get_this_host", api.session)
    assert host.startswith("OpaqueRef:")
    assert pool["master"] == host
    assert set(api.call("host.get_all")) == {host}


def test_host_record_facts(api):
    host = api.call("session.get_this_host", api.session)
    rec = api.call("host.get_record", host)
    for key in ("cpu_count", "vendor", "modelname", "flags", "arch"):
        assert key in rec["cpu_info"], key
    assert int(rec["cpu_info"]["cpu_count"]) >= 1
    assert int(rec["memory_total"]) > 64 << 20
    assert 0 < int(rec["memory_free"]) <= int(rec["memory_total"])
    assert rec["software_version"]["qemu"][0].isdigit()
    assert "product_version" in rec["software_version"]


def test_list_methods(ternd):
    proxy = xmlrpc.client.ServerProxy(ternd.url)
    methods = proxy.system.listMethods()
    # system.* has no Status envelope in XAPI; accept either form.
    if isinstance(methods, dict):
        methods = methods["Value"]
    for m in ("Async.VM.start", "VM.start", "VM.get_record",
              "session.login_with_password", "event.from", "pool.get_all_records"):
        assert m in methods, m


def test_logout_invalidates_session(api):
    api.call("session.logout")
    with pytest.raises(XapiFailure) as e:
        api.call("VM.get_all")
    assert e.value.code == "SESSION_INVALID"


def test_async_returns_task(api):
    vm = api.call("VM.create", {"name_label": "async"})
    task = api.call("Async.VM.clone", vm, "copy")
    assert task.startswith("OpaqueRef:")
    wait_for(lambda: api.call("task.get_status", task) != "pending", 10,
             "the task to finish")
    rec = api.call("task.get_record", task)
    assert rec["status"] == "success", rec
    assert float(rec["progress"]) == 1.0
    # XAPI's task.result carries the value as <value>...</value>.
    clone = re.search(r"OpaqueRef:[0-9a-f-]{36}", rec["result"]).group(0)
    assert api.call("VM.get_name_label", clone) == "copy"
    assert clone != vm


def test_vm_create_memory_constraints_consistent(api):
    vm = api.call("VM.create", {"name_label": "small",
                                "memory_static_max": str(64 << 20),
                                "memory_dynamic_max": str(64 << 20)})
    rec = api.call("VM.get_record", vm)
    smin, dmin, dmax, smax = (int(rec[f]) for f in (
        "memory_static_min", "memory_dynamic_min", "memory_dynamic_max",
        "memory_static_max"))
    assert smin <= dmin <= dmax <= smax, (smin, dmin, dmax, smax)
