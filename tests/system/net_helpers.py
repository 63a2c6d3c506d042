"""A tern host in a network namespace with a peer namespace on its LAN.

`NetHost` makes two namespaces (names unique to this process: tn<pid><n>h
for ternd and its QEMUs, tn<pid><n>p for the peer), and a veth pair
between them: the host end (`host_if`) stays unconfigured, for ternd to
find with PIF.scan and enslave to a network's bridge; the peer end has
PEER_IP.  The guest gets GUEST_IP on the same subnet (tern.ip= on its
command line), so the peer reaches it only through the host's bridge.
Nothing leaves the namespaces the test made.

Links are read with `ip -j` inside the namespaces, which is how the test
checks what ternd created and removed (taps tvif*, bridges).
"""

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import TIME_SCALE, Ternd, guest_vm_record, wait_for
from netns import pids_in_ns

_hosts = itertools.count()
SUBNET = "10.77.0"
PEER_IP = f"{SUBNET}.1"
GUEST_IP = f"{SUBNET}.10"
NET_RE = re.compile(r"TERN-NET (?P<dev>\S+) (?P<addr>\S+) mac=(?P<mac>\S+) "
                    r"mtu=(?P<mtu>\d+)")
GONE_RE = re.compile(r"TERN-NET-GONE (?P<dev>\S+) mac=(?P<mac>\S+)")


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          timeout=20, check=check)


def links(ns):
    """{name: link dict} of namespace NS (`ip -j -d link`)."""
    out = ip("-n", ns, "-j", "-d", "link", "show").stdout
    return {l["ifname"]: l for l in json.loads(out or "[]")}


def taps(ns):
    return sorted(n for n in links(ns) if n.startswith("tvif"))


def in_ns(ns, *cmd, timeout=30, check=False, input=None):
    return subprocess.run(["ip", "netns", "exec", ns, *cmd],
                          capture_output=True, text=True, timeout=timeout,
                          check=check, input=input)


class NetHost:
    def __init__(self, base, extra_args=("--accel", "tcg")):
        tag = f"{os.getpid()}{next(_hosts)}"
        self.base = Path(base)
        self.ns = f"tn{tag}h"
        self.peer = f"tn{tag}p"
        self.host_if = f"tnh{tag}"[:15]
        self.peer_if = f"tnp{tag}"[:15]
        self._made = []
        try:
            for ns in (self.ns, self.peer):
                ip("netns", "add", ns)
                self._made.append(ns)
                ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", self.host_if, "netns", self.ns, "type", "veth",
               "peer", "name", self.peer_if, "netns", self.peer)
            ip("-n", self.peer, "addr", "add", f"{PEER_IP}/24", "dev",
               self.peer_if)
            ip("-n", self.peer, "link", "set", self.peer_if, "up")
            self.t = Ternd(self.base, list(extra_args), netns=self.ns,
                           host="127.0.0.1")
            self.t.start()
            self.api = self.t.unix_xapi(30)
        except BaseException:
            self.close()
            raise

    def restart(self):
        self.t.restart()
        self.api = self.t.unix_xapi(30)

    def console_path(self, uuid):
        return self.t.run_dir / "vms" / uuid / "console.log"

    def lan_network(self):
        """PIF.scan, then the network of the host end of the veth, with
        the PIF plugged (the veth enslaved to its bridge)."""
        self.api.call("PIF.scan", self.api.call("host.get_all")[0])
        for ref, rec in self.api.call("PIF.get_all_records").items():
            if rec["device"] == self.host_if:
                self.api.call("PIF.plug", ref)
                return rec["network"]
        pytest.fail(f"PIF.scan found no PIF for {self.host_if}")

    def close(self):
        t = getattr(self, "t", None)
        if t is not None:
            try:
                t.close()
            finally:
                self.t = None
        for ns in self._made:
            for pid in pids_in_ns(ns, "qemu"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            ip("netns", "del", ns, check=False)
        self._made = []


@pytest.fixture
def nethost(tmp_path):
    h = NetHost(tmp_path / "h")
    yield h
    h.close()


def net_vm(host, guest, name="netguest", ip_addr=None, watch=True,
           memory_mib=96):
    """A VM whose guest configures tern.ip (or only watches its NICs)."""
    args = ("console=ttyS0 quiet memcheck.mib=0")
    if ip_addr:
        args += f" tern.ip={ip_addr}/24"
    elif watch:
        args += " tern.net=1"
    return host.api.call("VM.create", guest_vm_record(
        guest, name=name, memory_mib=memory_mib, args=args))


def vif(host, vm, network, device="0", mac="", mtu=None):
    rec = {"VM": vm, "network": network, "device": device, "MAC": mac,
           "other_config": {}}
    if mtu is not None:
        rec["MTU"] = str(mtu)
    return host.api.call("VIF.create", rec)


class NetConsole:
    """The guest's console lines about its NICs."""

    def __init__(self, path, timeout=20):
        self.path = Path(path)
        wait_for(lambda: self.path.exists(), timeout, f"{self.path}")
        self.f = open(self.path, "rb")
        self.data = b""

    def lines(self):
        self.data += self.f.read()
        return self.data.decode("utf-8", "replace").splitlines()

    def nics(self):
        return [m.groupdict() for m in map(NET_RE.search, self.lines()) if m]

    def gone(self):
        return [m.groupdict() for m in map(GONE_RE.search, self.lines())
                if m]

    def wait_nic(self, mac, timeout=60):
        return wait_for(lambda: next((n for n in self.nics()
                                      if n["mac"] == mac), None),
                        timeout * TIME_SCALE, f"TERN-NET with mac={mac}:\n"
                        + self.data.decode(errors="replace")[-1500:],
                        interval=0.1)

    def wait_gone(self, mac, timeout=60):
        return wait_for(lambda: next((n for n in self.gone()
                                      if n["mac"] == mac), None),
                        timeout * TIME_SCALE, f"TERN-NET-GONE mac={mac}:\n"
                        + self.data.decode(errors="replace")[-1500:],
                        interval=0.1)

    def close(self):
        self.f.close()
