"""A restart of ternd finds every object as it was: VMs with every field
set, the pool and the host identity; sessions and tasks are transient."""

import pytest

from conftest import XapiFailure

# Fields that are computed live, not stored.
VOLATILE = {"host": {"memory_free", "address"}, "VM": set(), "pool": set()}


def snapshot(api):
    out = {}
    for cls in ("VM", "pool", "host"):
        recs = api.call(f"{cls}.get_all_records")
        for rec in recs.values():
            for f in VOLATILE[cls]:
                rec.pop(f, None)
        out[cls] = recs
    return out


def test_restart_keeps_objects(ternd):
    api = ternd.xapi()
    vms = []
    for i in range(5):
        vm = api.call("VM.create", {"name_label": f"r{i}",
                                    "memory_static_max": str((64 + i) << 20),
                                    "VCPUs_max": str(1 + i % 2),
                                    "PV_args": f"console=ttyS0 n={i}"})
        vms.append(vm)
    api.call("VM.set_name_description", vms[0], "desc é ünïcödé")
    api.call("VM.set_tags", vms[1], ["a", "b"])
    api.call("VM.add_to_other_config", vms[2], "key", "value")
    api.call("VM.add_to_other_config", vms[2], "k2", "<&>\"'")
    api.call("VM.destroy", vms[4])
    pool = list(api.call("pool.get_all"))[0]
    api.call("pool.set_name_label", pool, "my pool")
    api.call("pool.add_to_other_config", pool, "p", "q")
    host = api.call("session.get_this_host", api.session)
    api.call("host.set_name_description", host, "the host")
    before = snapshot(api)
    assert len(before["VM"]) == 4

    ternd.restart()

    with pytest.raises(XapiFailure) as e:
        api.call("VM.get_all")
    assert e.value.code == "SESSION_INVALID"

    api = ternd.xapi()
    after = snapshot(api)
    assert after == before
    assert api.call("session.get_this_host", api.session) == host
    assert api.call("VM.get_name_description", vms[0]) == "desc é ünïcödé"
    # The daemon still works after restart: change, restart again, check.
    api.call("VM.set_name_label", vms[3], "after-restart")
    ternd.restart()
    api = ternd.xapi()
    assert api.call("VM.get_name_label", vms[3]) == "after-restart"
    assert vms[4] not in api.call("VM.get_all")


def test_restart_users_kept(ternd):
    ternd.stop()
    ternd.user_add("later", "laterpw", "read-only")
    ternd.start()
    ternd.xapi("later", "laterpw").call("VM.get_all")
    out = ternd.admin("user", "list").stdout
    assert "later" in out and "admin" in out
    assert "$argon2" not in out
