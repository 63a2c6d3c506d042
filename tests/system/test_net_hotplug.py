"""VIF hot-plug on a running guest: VIF.plug makes a NIC appear inside the
guest with the VIF's MAC and MTU (its console line), VIF.unplug makes it
go (the guest lets go of the device before QEMU's netdev and the tap are
removed), and VIF.destroy of a plugged VIF unplugs it first.  The tap is
on the host only while the NIC is plugged."""

from conftest import XapiFailure, wait_for
from net_helpers import NetConsole, links, net_vm, nethost, taps, vif

__all__ = ["nethost"]


def test_plug_unplug_seen_in_guest(nethost, guest):
    h = nethost
    net = h.api.call("network.create", {"name_label": "hp", "bridge": "",
                                        "MTU": "1500", "other_config": {}})
    bridge = h.api.call("network.get_bridge", net)
    vm = net_vm(h, guest)
    h.api.call("VM.start", vm, False, False)
    uuid = h.api.call("VM.get_uuid", vm)
    con = NetConsole(h.console_path(uuid))
    try:
        wait_for(lambda: "TERN-GUEST-READY" in "\n".join(con.lines()), 60,
                 "the guest to boot")
        assert taps(h.ns) == []
        v = vif(h, vm, net, device="1", mtu=1300)
        mac = h.api.call("VIF.get_MAC", v)
        assert h.api.call("VIF.get_currently_attached", v) is False
        # A paused guest could not take part: refused, nothing made.
        h.api.call("VM.pause", vm)
        try:
            h.api.call("VIF.plug", v)
            raise AssertionError("plug into a paused VM was accepted")
        except XapiFailure as exc:
            assert exc.code == "VM_BAD_POWER_STATE"
        assert taps(h.ns) == []
        h.api.call("VM.unpause", vm)
        h.api.call("VIF.plug", v)
        assert h.api.call("VIF.get_currently_attached", v) is True
        tap = taps(h.ns)
        assert len(tap) == 1 and links(h.ns)[tap[0]]["master"] == bridge
        nic = con.wait_nic(mac)
        assert nic["mtu"] == "1300"
        try:
            h.api.call("VIF.plug", v)
            raise AssertionError("a second plug was accepted")
        except XapiFailure as exc:
            assert exc.code == "DEVICE_ALREADY_ATTACHED"

        h.api.call("VIF.unplug", v)
        con.wait_gone(mac)
        assert taps(h.ns) == []
        assert h.api.call("VIF.get_currently_attached", v) is False
        try:
            h.api.call("VIF.unplug", v)
            raise AssertionError("a second unplug was accepted")
        except XapiFailure as exc:
            assert exc.code == "DEVICE_ALREADY_DETACHED"

        # Plugged again (a new NIC in the guest), then destroyed while
        # plugged: destroy unplugs first and the tap goes.
        seen = len(con.nics())
        h.api.call("VIF.plug", v)
        wait_for(lambda: len(con.nics()) > seen, 60, "the NIC to return")
        assert len(taps(h.ns)) == 1
        h.api.call("VIF.destroy", v)
        assert taps(h.ns) == []
        assert h.api.call("VM.get_VIFs", vm) == []
        assert h.api.call("network.get_VIFs", net) == []
        # The guest's watcher reports within its 200 ms poll.
        wait_for(lambda: len(con.gone()) == 2, 10,
                 "the second NIC to go in the guest")
    finally:
        con.close()
    h.api.call("VM.hard_shutdown", vm)
