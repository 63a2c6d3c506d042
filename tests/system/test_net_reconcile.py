"""What ternd finds on the host when it starts: a tap named like its own
that no running VM's VIF accounts for, and a bridge it made whose network
is gone, are removed; the tap of a VM that runs across the restart stays
(and stays on its bridge); a PIF recorded as plugged is plugged again
when its bridge went away (as after a host reboot), and a running VM's tap rejoins it; links that are not
this ternd's (other names, no alias on a bridge, another host's alias as
when two ternds share a namespace) are left alone.  A VM's shutdown takes its tap."""

from conftest import wait_for
from net_helpers import ip, links, net_vm, nethost, taps, vif

__all__ = ["nethost"]

LEFTOVER = "tvif0123456789a"
OTHERS = "tvifbbbbbbbbbbb"   # another ternd's, in the same namespace


def test_restart_reconciles(nethost, guest):
    h = nethost
    net = h.lan_network()
    bridge = h.api.call("network.get_bridge", net)
    vm = net_vm(h, guest)
    v = vif(h, vm, net)
    h.api.call("VM.start", vm, False, False)
    (running_tap,) = taps(h.ns)

    owner = "tern:" + h.api.call("host.get_uuid",
                                 h.api.call("host.get_all")[0])
    assert links(h.ns)[running_tap]["ifalias"] == owner
    assert links(h.ns)[bridge]["ifalias"] == owner
    h.t.stop()
    # Leftovers while ternd is down: a persistent tap with ternd's name
    # pattern, a bridge marked as ternd's without a network, and links
    # that are someone else's.
    ip("-n", h.ns, "tuntap", "add", "dev", LEFTOVER, "mode", "tap")
    ip("-n", h.ns, "link", "add", "xapi7", "type", "bridge")
    ip("-n", h.ns, "link", "set", "xapi7", "alias", owner)
    ip("-n", h.ns, "link", "add", "keepbr", "type", "bridge")
    ip("-n", h.ns, "link", "add", "otherbr", "type", "bridge")
    ip("-n", h.ns, "link", "set", "otherbr", "alias", "tern:another-host")
    ip("-n", h.ns, "tuntap", "add", "dev", "tvifshort", "mode", "tap")
    ip("-n", h.ns, "tuntap", "add", "dev", OTHERS, "mode", "tap")
    ip("-n", h.ns, "link", "set", OTHERS, "alias", "tern:another-host")
    # The PIF's bridge goes (the VM's tap and the veth with it).
    ip("-n", h.ns, "link", "del", bridge)
    assert LEFTOVER in taps(h.ns)

    h.restart()
    ls = links(h.ns)
    assert LEFTOVER not in ls, "the leftover tap survived the restart"
    assert "xapi7" not in ls, "the leftover bridge survived the restart"
    for foreign in ("keepbr", "otherbr", "tvifshort", OTHERS):
        assert foreign in ls, f"{foreign}, not this ternd's, was removed"
    assert running_tap in ls, "the running VM lost its tap"
    assert ls[running_tap].get("master") == bridge, \
        "the running VM's tap is not back on its bridge"
    assert ls[bridge]["linkinfo"]["info_kind"] == "bridge"
    assert ls[h.host_if]["master"] == bridge, "the PIF was not plugged again"
    assert h.api.call("VIF.get_currently_attached", v) is True

    h.api.call("VM.hard_shutdown", vm)
    wait_for(lambda: running_tap not in links(h.ns), 10,
             "the tap to go with the VM")
    assert h.api.call("VIF.get_currently_attached", v) is False
