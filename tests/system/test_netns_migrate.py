"""A live migration across a real link between network namespaces.

Hosts A and B run in namespaces of their own (netns.py), joined by a veth;
the memcheck guest moves A -> B peer to peer, its stream crossing the
veth.  Proven: the guest's memory survives (memcheck errors=0, its
heartbeat continues on B), A keeps neither record nor QEMU, and the QEMU
that runs the guest on B is in B's network namespace, not A's nor the
root one.
"""

import os

import pytest

from migration_helpers import (Console, assert_continues, assert_gone,
                               boot_guest, p2p_dest, start_migration,
                               task_ok, vm_pid, wait_task)
from netns import NetnsPair, ns_inode

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="network namespaces need root")


@pytest.fixture
def pair(request):
    p = NetnsPair()
    failed = request.session.testsfailed
    try:
        yield p
    finally:
        p.close()
        p.keep_or_remove(request.session.testsfailed > failed)


def test_live_migration_crosses_the_veth(pair, guest):
    a, b = pair.a, pair.b
    vm, uuid, src_con = boot_guest(a, guest, lines=2)
    src_pid = vm_pid(a, vm)
    assert os.stat(f"/proc/{src_pid}/ns/net").st_ino == ns_inode(pair.ns["a"])
    assert b.url.startswith("http://10.99.0.2:")

    task = start_migration(a, vm, p2p_dest(b))
    task_ok(wait_task(a.api, task, timeout=90))

    dst_vm = b.vm_by_uuid(uuid)
    assert dst_vm is not None
    dst_pid = vm_pid(b, dst_vm)
    net = os.stat(f"/proc/{dst_pid}/ns/net").st_ino
    assert net == ns_inode(pair.ns["b"])
    assert net != ns_inode(pair.ns["a"])
    assert net != os.stat("/proc/self/ns/net").st_ino
    dst_con = Console(b.console_path(uuid))
    assert_continues(src_con, dst_con)
    assert_gone(a, uuid, src_pid)
    assert pair.a.qemus_in_ns() == []
