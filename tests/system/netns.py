"""Two tern hosts, each in its own network namespace, joined by a veth link.

The fault matrix (tests/matrix/), the soak (bench/soak/) and
test_netns_migrate.py need hosts whose migrations cross a real link that
a test can cut, and daemons a test can freeze, kill and restart.
`NetnsPair` makes two namespaces (names unique to this process and pair,
tern-<pid><n>-a and -b), a veth pair between them (10.99.0.1/24 in a,
10.99.0.2/24 in b; addresses in separate namespaces cannot collide with
anyone's), brings lo and the veth up in each, and runs each ternd under
`ip netns exec` (so its QEMUs are in the namespace too), listening on its
namespace address.  The harness, in the root namespace, talks to each
ternd over its Unix socket, which namespaces do not separate; the source
reaches the destination at 10.99.0.x across the veth.

Faults: link_down()/link_up(), freeze()/thaw()/kill()/restart() of a
ternd, kill_qemu().  close() (also on failure, and from the context
manager) thaws and stops the daemons, kills every QEMU in either
namespace and deletes the namespaces (the veth goes with them).
"""

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from conftest import Ternd, pid_alive, wait_for
from migration_helpers import Host

_pairs = itertools.count()
SUBNET = "10.99.0"


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          timeout=20, check=check)


def ns_inode(name):
    """The inode that names network namespace NAME."""
    return os.stat(f"/run/netns/{name}").st_ino


def pids_in_ns(name, comm=None):
    """Pids whose network namespace is NAME (and whose comm contains
    COMM, when given)."""
    ino = ns_inode(name)
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.stat(f"/proc/{d}/ns/net").st_ino != ino:
                continue
            if comm is not None:
                with open(f"/proc/{d}/comm") as f:
                    if comm not in f.read():
                        continue
        except OSError:
            continue
        if pid_alive(int(d)):
            out.append(int(d))
    return out


class NsHost(Host):
    """A Host (migration_helpers) whose API is the ternd's Unix socket,
    each call bounded by CALL_TIMEOUT seconds."""

    CALL_TIMEOUT = 20

    def __init__(self, ternd, name):
        self.t = ternd
        self.name = name
        self.api = ternd.unix_xapi(self.CALL_TIMEOUT)

    def restart_api(self):
        self.api = self.t.unix_xapi(self.CALL_TIMEOUT)

    def qemus_in_ns(self):
        return pids_in_ns(self.t.netns, "qemu")


class NetnsPair:
    """Hosts A and B in namespaces of their own; see the module text.
    HOLD: give each ternd a TERN_TEST_HOLD directory (hold_dir[side])."""

    def __init__(self, base=None, hold=False, extra_args=()):
        n = next(_pairs)
        tag = f"{os.getpid()}{n}"
        self.base = Path(base or tempfile.mkdtemp(prefix="tn", dir="/tmp"))
        self.ns = {s: f"tern-{tag}-{s}" for s in "ab"}
        self.veth = {s: f"tv{tag}{s}"[-15:] for s in "ab"}
        self.addr = {"a": f"{SUBNET}.1", "b": f"{SUBNET}.2"}
        self.hold_dir = {}
        self.ternd = {}
        self.host = {}
        self._made_ns = []
        try:
            self._links()
            for s in "ab":
                env = None
                if hold:
                    d = self.base / f"hold-{s}"
                    d.mkdir(parents=True, exist_ok=True)
                    self.hold_dir[s] = d
                    env = {"TERN_TEST_HOLD": str(d)}
                self.ternd[s] = Ternd(self.base / s, extra_args,
                                      netns=self.ns[s], host=self.addr[s],
                                      env=env)
            for s in "ab":
                self.start(s)
        except BaseException:
            self.close()
            raise

    def _links(self):
        for s in "ab":
            _ip("netns", "add", self.ns[s])
            self._made_ns.append(self.ns[s])
        _ip("link", "add", self.veth["a"], "netns", self.ns["a"], "type",
            "veth", "peer", "name", self.veth["b"], "netns", self.ns["b"])
        for s in "ab":
            _ip("-n", self.ns[s], "addr", "add", f"{self.addr[s]}/24", "dev",
                self.veth[s])
            _ip("-n", self.ns[s], "link", "set", "lo", "up")
            _ip("-n", self.ns[s], "link", "set", self.veth[s], "up")

    @property
    def a(self):
        return self.host["a"]

    @property
    def b(self):
        return self.host["b"]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- faults -------------------------------------------------------
    def link_down(self):
        _ip("-n", self.ns["a"], "link", "set", self.veth["a"], "down")

    def link_up(self):
        _ip("-n", self.ns["a"], "link", "set", self.veth["a"], "up")
        _ip("-n", self.ns["b"], "link", "set", self.veth["b"], "up")

    def pid(self, side):
        return self.ternd[side].proc.pid

    def freeze(self, side):
        os.kill(self.pid(side), signal.SIGSTOP)

    def thaw(self, side):
        os.kill(self.pid(side), signal.SIGCONT)

    def kill(self, side):
        """SIGKILL of the ternd (frozen or not); its QEMUs live on."""
        t = self.ternd[side]
        t.proc.kill()
        t.proc.wait(10)
        t.log.close()

    def start(self, side, timeout=20):
        self.ternd[side].start(timeout)
        self.host[side] = NsHost(self.ternd[side], side.upper())

    def restart(self, side):
        """Starts the ternd again on its state (after kill())."""
        self.start(side)

    def kill_qemu(self, side, uuid):
        pid = self.ternd[side].vm_pids().get(uuid)
        assert pid is not None, f"no QEMU pid for {uuid} on {side}"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), 10, f"QEMU {pid} to die")
        return pid

    # ---- teardown -----------------------------------------------------
    def close(self):
        for s, t in self.ternd.items():
            try:
                if t.alive():
                    os.kill(t.proc.pid, signal.SIGCONT)
                    t.proc.send_signal(signal.SIGTERM)
                    try:
                        t.proc.wait(10)
                    except subprocess.TimeoutExpired:
                        t.proc.kill()
                        t.proc.wait()
            except OSError:
                pass
            t.kill_qemus()
        for name in self._made_ns:
            try:
                for pid in pids_in_ns(name, "qemu"):
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            _ip("netns", "del", name, check=False)
        self._made_ns = []
        for t in self.ternd.values():
            shutil.rmtree(t.run_dir, ignore_errors=True)

    def keep_or_remove(self, keep):
        """Removes the base directory (logs, state) unless KEEP."""
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)
