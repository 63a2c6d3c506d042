"""A guest on a tern network: its VIF is a tap on the network's bridge,
the host's veth (a PIF) joins the bridge to a peer namespace, and the peer
reaches the guest's IP (ping, the TCP echo server on port 7).  The guest
sees the VIF's MAC and MTU; the tap goes with the VM."""

import socket

from conftest import XapiFailure, wait_for
from net_helpers import (GUEST_IP, NetConsole, in_ns, links, net_vm, nethost,
                         taps, vif)

__all__ = ["nethost"]


def ping(ns, n):
    """Busybox's ping (the host has no iputils) from NS to the guest."""
    return in_ns(ns, "busybox", "ping", "-c", str(n), "-i", "0.2", "-W", "2",
                 GUEST_IP)


def echo(ns, text, port=7):
    """Sends TEXT to the guest's echo server from namespace NS; returns
    what came back (busybox nc in the peer namespace)."""
    p = in_ns(ns, "python3", "-c",
              "import socket,sys;"
              f"s=socket.create_connection(('{GUEST_IP}',{port}),5);"
              "s.sendall(sys.argv[1].encode());"
              "s.shutdown(socket.SHUT_WR);"
              "d=b''\n"
              "while True:\n"
              " b=s.recv(4096)\n"
              " if not b: break\n"
              " d+=b\n"
              "print(d.decode(),end='')", text, timeout=20)
    return p.stdout if p.returncode == 0 else None


def test_guest_answers_peer(nethost, guest):
    h = nethost
    net = h.lan_network()
    bridge = h.api.call("network.get_bridge", net)
    assert links(h.ns)[h.host_if].get("master") == bridge
    vm = net_vm(h, guest, ip_addr=GUEST_IP)
    v = vif(h, vm, net, mtu=1400)
    mac = h.api.call("VIF.get_MAC", v)
    h.api.call("VM.start", vm, False, False)
    uuid = h.api.call("VM.get_uuid", vm)
    con = NetConsole(h.console_path(uuid))
    try:
        nic = con.wait_nic(mac)
        assert nic["dev"] == "eth0"
        assert nic["addr"] == f"{GUEST_IP}/24"
        assert nic["mtu"] == "1400"
        # The tap is on the bridge, up, with the VIF's MTU.
        tap = taps(h.ns)
        assert len(tap) == 1, tap
        l = links(h.ns)[tap[0]]
        assert l["master"] == bridge and l["mtu"] == 1400
        assert h.api.call("VIF.get_currently_attached", v) is True
        wait_for(lambda: ping(h.peer, 1).returncode == 0, 60,
                 "the guest to answer ping")
        p = ping(h.peer, 5)
        assert p.returncode == 0 and " 0% packet loss" in p.stdout, p.stdout
        got = wait_for(lambda: echo(h.peer, "hello tern\n"), 30,
                       "the echo server")
        assert got == "hello tern\n"
        # (The host's busybox wget crashes with -q -T.)
        page = wait_for(lambda: in_ns(h.peer, "busybox", "wget", "-O", "-",
                                      f"http://{GUEST_IP}/").stdout, 30,
                        "the guest's HTTP server")
        assert page.strip() == f"tern-guest {mac}", page
        # The peer learnt the guest's MAC from the guest itself.
        neigh = in_ns(h.peer, "ip", "neigh", "show", GUEST_IP).stdout
        assert mac in neigh, neigh
    finally:
        con.close()
    h.api.call("VM.hard_shutdown", vm)
    wait_for(lambda: taps(h.ns) == [], 10, "the tap to go with the VM")
    assert h.api.call("VIF.get_currently_attached", v) is False


def test_two_vifs_in_device_order(nethost, guest):
    """VIFs become NICs in device order (eth0 is device 0 even when made
    second), each with its own MAC and MTU, each tap on its own bridge."""
    h = nethost
    n1 = h.api.call("network.create", {"name_label": "one", "bridge": "",
                                       "other_config": {}})
    n2 = h.api.call("network.create", {"name_label": "two", "bridge": "",
                                       "MTU": "9000", "other_config": {}})
    vm = net_vm(h, guest)
    v2 = vif(h, vm, n2, device="2")
    v0 = vif(h, vm, n1, device="0", mac="02:00:00:aa:bb:cc")
    h.api.call("VM.start", vm, False, False)
    uuid = h.api.call("VM.get_uuid", vm)
    con = NetConsole(h.console_path(uuid))
    try:
        first = con.wait_nic("02:00:00:aa:bb:cc")
        second = con.wait_nic(h.api.call("VIF.get_MAC", v2))
    finally:
        con.close()
    assert (first["dev"], first["mtu"]) == ("eth0", "1500")
    assert (second["dev"], second["mtu"]) == ("eth1", "9000")
    ls = links(h.ns)
    masters = sorted(ls[t]["master"] for t in taps(h.ns))
    assert masters == sorted(h.api.call("network.get_bridge", n)
                             for n in (n1, n2))
    assert ls[h.api.call("network.get_bridge", n2)]["mtu"] == 9000
    h.api.call("VM.hard_shutdown", vm)
    wait_for(lambda: taps(h.ns) == [], 10, "both taps to go")
    for v in (v0, v2):
        assert h.api.call("VIF.get_currently_attached", v) is False


def test_failed_start_leaves_no_tap(nethost, guest):
    """A VIF whose bridge cannot be had (an unmanaged network naming a
    bridge that does not exist) fails VM.start; the tap already opened
    for the VM's other VIF goes with the failure."""
    h = nethost
    good = h.api.call("network.create", {"name_label": "good", "bridge": "",
                                         "other_config": {}})
    bad = h.api.call("network.create", {"name_label": "bad",
                                        "bridge": "nosuchbr",
                                        "managed": False,
                                        "other_config": {}})
    vm = net_vm(h, guest)
    v0 = vif(h, vm, good, device="0")
    vif(h, vm, bad, device="1")
    try:
        h.api.call("VM.start", vm, False, False)
        raise AssertionError("VM.start succeeded without its bridge")
    except XapiFailure as exc:
        assert exc.code == "INTERNAL_ERROR" and "nosuchbr" in str(exc.desc)
    assert h.api.call("VM.get_power_state", vm) == "Halted"
    assert taps(h.ns) == []
    assert h.api.call("VIF.get_currently_attached", v0) is False
    assert "nosuchbr" not in links(h.ns), "an unmanaged bridge was made"
