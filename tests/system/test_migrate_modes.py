"""Live migration in each of the four modes: managed or peer-to-peer
control, crossed with tunnelled or direct data, of a running memcheck guest
that dirties memory.  After it the memcheck sequence goes on at the
destination with zero errors, continuing the source's numbers, and the
source has neither the QEMU process nor the record.  The peer-to-peer
runs also rename the VM on arrival (dest_name).
"""

import pytest

from conftest import XapiFailure, pid_alive
from migration_helpers import (Console, assert_continues, assert_gone,
                               assert_no_vm, assert_running, boot_guest,
                               hosts, p2p_dest, start_migration, task_ok,
                               token, vm_pid, wait_task)

__all__ = ["hosts"]


@pytest.mark.parametrize("mode", ["tunnelled", "direct"])
@pytest.mark.parametrize("control", ["managed", "p2p"])
def test_live_migration(hosts, guest, control, mode):
    a, b = hosts
    vm, uuid, src_con = boot_guest(a, guest, lines=3, mib=16, rate=8)
    src_pid = vm_pid(a, vm)

    opts = {"mode": mode}
    if control == "managed":
        dest = token(b, uuid)
    else:
        dest = p2p_dest(b)
        opts["control"] = "p2p"
        opts["dest_name"] = f"moved-{mode}"  # rename on arrival
    task = start_migration(a, vm, dest, True, opts)
    seen = []
    rec = wait_task(a.api, task, timeout=60,
                    on_poll=lambda r: seen.append(r["other_config"].get("phase")))
    new_vm = task_ok(rec)

    # The destination runs it, same uuid.
    brec = assert_running(b, new_vm)
    assert brec["uuid"] == uuid
    assert brec["name_label"] == opts.get("dest_name", "guest")
    assert b.api.call("VM.get_by_name_label", brec["name_label"]) == [new_vm]
    dst_con = Console(b.console_path(uuid))
    last_src, seqs = assert_continues(src_con, dst_con, new_lines=3)

    # The source has neither QEMU nor record.
    assert_gone(a, uuid, src_pid)
    assert not pid_alive(src_pid)

    # The final task record keeps the figures.
    oc = rec["other_config"]
    for key in ("total_ms", "downtime_ms", "blackout_ms", "bytes"):
        assert key in oc, (key, oc)
    assert int(oc["bytes"]) > 0
    assert rec["progress"] == pytest.approx(1.0)
    print(f"{control}/{mode}: source seq {last_src} -> destination {seqs[:3]}"
          f", figures {oc}, phases seen {sorted(set(filter(None, seen)))}")


def test_unsupported_options_refused(hosts, guest):
    """An option tern cannot honour is refused with a clear error, never
    ignored; nothing moves."""
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=1)
    pid = vm_pid(a, vm)
    for opts in ({"compress": "true"}, {"postcopy": "true"},
                 {"parallel": "4"}, {"mode": "carrier-pigeon"},
                 {"no_such_option": "1"}):
        dest = token(b, uuid)
        try:
            task = start_migration(a, vm, dest, True, opts)
        except XapiFailure as e:
            err = e.desc
        else:
            rec = wait_task(a.api, task, timeout=30)
            assert rec["status"] == "failure", (opts, rec)
            err = rec["error_info"]
        print(opts, "->", err)
        assert err[0] == "INVALID_VALUE", (opts, err)
        assert list(opts)[0] in " ".join(map(str, err)), (opts, err)
    assert_running(a, vm, pid)
    con.wait_status(len(con.status()) + 1, 10, "memcheck on A")
    assert_no_vm(b, uuid)
