"""Authority: a session's rights follow its user's current record (deleted
or demoted while the daemon runs), and a task is its owner's (others may
read it; only the owner or a pool-operator and above cancel or destroy)."""

import pytest

from conftest import XapiFailure, wait_for

USERS = (("admin", "adminpw", "pool-admin"),
         ("alice", "alicepw", "vm-power-admin"),
         ("bob", "bobpw", "vm-power-admin"),
         ("pop", "poppw", "pool-operator"))


@pytest.fixture
def t(ternd_factory):
    return ternd_factory(users=USERS)


def refused(code, fn, *args):
    with pytest.raises(XapiFailure) as e:
        fn(*args)
    assert e.value.code == code, e.value
    return e.value


def test_demoted_user_loses_rights_at_next_call(t):
    alice = t.xapi("alice", "alicepw")
    vm = alice.call("VM.create", {"name_label": "mine"})
    # Demoted by the administration command while the daemon runs.
    t.admin("user", "role", "alice", "--role", "read-only")
    err = refused("RBAC_PERMISSION_DENIED", alice.call, "VM.create",
                  {"name_label": "more"})
    assert err.params[0].lower() == "vm.create"
    refused("RBAC_PERMISSION_DENIED", alice.call, "VM.destroy", vm)
    # Still a session: reading is what read-only may do.
    assert alice.call("VM.get_name_label", vm) == "mine"
    assert alice.call("session.get_rbac_permissions",
                      alice.session) == ["read-only"]
    # And promoted back, the same session may again.
    t.admin("user", "role", "alice", "--role", "vm-power-admin")
    alice.call("VM.destroy", vm)


def test_deleted_user_session_ends(t):
    bob = t.xapi("bob", "bobpw")
    bob.call("VM.get_all")
    t.admin("user", "del", "bob")
    refused("SESSION_INVALID", bob.call, "VM.get_all")
    refused("SESSION_INVALID", bob.call, "VM.create", {"name_label": "x"})
    # Re-adding the name does not revive the old session.
    t.user_add("bob", "bobpw2", "pool-admin")
    refused("SESSION_INVALID", bob.call, "VM.get_all")
    t.xapi("bob", "bobpw2").call("VM.get_all")


def test_role_command_refuses_bad_input(t):
    r = t.admin("user", "role", "nobody", "--role", "read-only", check=False)
    assert r.returncode != 0 and "no such user" in r.stderr
    r = t.admin("user", "role", "alice", "--role", "emperor", check=False)
    assert r.returncode != 0 and "--role" in r.stderr


def finished_task(x, name):
    task = x.call("Async.VM.create", {"name_label": name})
    wait_for(lambda: x.call("task.get_status", task) != "pending", 10,
             "the task to finish")
    return task


def test_task_is_its_owners(t):
    alice, bob = t.xapi("alice", "alicepw"), t.xapi("bob", "bobpw")
    task = finished_task(alice, "a")
    # Anyone reads it.
    rec = bob.call("task.get_record", task)
    assert rec["status"] == "success" and rec["owner"] == "alice"
    assert task in bob.call("task.get_all")
    # Another user may neither cancel nor destroy it.
    err = refused("RBAC_PERMISSION_DENIED", bob.call, "task.cancel", task)
    assert err.params[0].lower() == "task.cancel" and "alice" in err.params[1]
    err = refused("RBAC_PERMISSION_DENIED", bob.call, "task.destroy", task)
    assert err.params[0].lower() == "task.destroy"
    assert task in alice.call("task.get_all")
    # Its owner may (a finished task cannot be cancelled, but may go).
    refused("OPERATION_NOT_ALLOWED", alice.call, "task.cancel", task)
    alice.call("task.destroy", task)
    assert task not in alice.call("task.get_all")


def test_pool_operator_may_destroy_others_tasks(t):
    alice, pop = t.xapi("alice", "alicepw"), t.xapi("pop", "poppw")
    task = finished_task(alice, "b")
    refused("OPERATION_NOT_ALLOWED", pop.call, "task.cancel", task)
    pop.call("task.destroy", task)
    assert task not in alice.call("task.get_all")
    task = finished_task(alice, "c")
    t.xapi().call("task.destroy", task)

