"""A guest on a tern network: its VIF is a tap on the network's bridge,
the host's veth (a PIF) joins the bridge to a peer namespace, and the peer
reaches the guest's IP (ping, the TCP echo server on port 7).  The guest
sees the VIF's MAC and MTU; the tap goes with the VM."""

import socket

from conftest import wait_for
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
        # The peer learnt the guest's MAC from the guest itself.
        neigh = in_ns(h.peer, "ip", "neigh", "show", GUEST_IP).stdout
        assert mac in neigh, neigh
    finally:
        con.close()
    h.api.call("VM.hard_shutdown", vm)
    wait_for(lambda: taps(h.ns) == [], 10, "the tap to go with the VM")
    assert h.api.call("VIF.get_currently_attached", v) is False
