"""The destination remembers a decided migration (its tombstone), and
"unknown" is not "aborted".

A source that lost the control channel after its switchover asks the
destination (TERN-QUERY) and resumes its own copy only on "aborted".  The
destination keeps the outcome in its journal after reaching RUNNING (until
the source acknowledges with DONE, or for a day), and answers "unknown",
never "aborted", about a migration it has no row for (docs/migration.md,
"Tombstones").

- A question about a migration the destination never saw: "unknown".
- The control channel cut after the destination runs the VM, before the
  source heard RUNNING: a proxy between the hosts holds the destination's
  bytes from the start of the transfer, waits until the destination's
  record is Running, then cuts the connection.  The source asks, hears
  "running" from the tombstone, and lets its copy go: exactly one copy,
  at the destination.  (Before the fix the row was gone, the answer was
  "aborted", and both copies ran.)
"""

import json
import socket
import threading

from conftest import pid_alive, wait_for
from migration_helpers import (Console, boot_guest, hosts, start_migration,
                               token, vm_pid, wait_phase, wait_task)

__all__ = ["hosts"]


def query(host, migration_id, secret):
    """TERN-QUERY/1 on HOST's API port; returns the STATE reply."""
    with socket.create_connection(("127.0.0.1", host.t.port), 10) as s:
        msg = json.dumps({"migration_id": migration_id, "secret": secret})
        s.sendall(f"TERN-QUERY/1 {msg}\n".encode())
        buf = b""
        while b"\n" not in buf:
            b = s.recv(4096)
            assert b, f"connection closed after {buf!r}"
            buf += b
    verb, body = buf.decode().split(" ", 1)
    assert verb == "STATE", buf
    return json.loads(body)["state"]


def test_unknown_migration_is_unknown(hosts):
    _, b = hosts
    assert query(b, "00000000-0000-4000-8000-000000000000",
                 "ab" * 32) == "unknown"


class Proxy:
    """Forwards TCP to PORT.  The first connection (the control channel)
    can be held (bytes from the destination kept back) and cut."""

    def __init__(self, port):
        self.target = port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.ctl = None
        self.hold = threading.Event()
        self.held = 0
        self.socks = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [c, u]
            first = self.ctl is None
            if first:
                self.ctl = (c, u)
            threading.Thread(target=self._pump, args=(c, u, False),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, first),
                             daemon=True).start()

    def _pump(self, src, dst, holdable):
        while True:
            try:
                b = src.recv(65536)
            except OSError:
                b = b""
            if not b:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if holdable and self.hold.is_set():
                self.held += len(b)
                continue
            try:
                dst.sendall(b)
            except OSError:
                return

    def cut(self):
        for s in self.ctl:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.sock.close()
        for s in self.socks:
            s.close()


def test_running_outcome_survives_a_cut_channel(hosts, guest):
    a, b = hosts
    vm, uuid, con = boot_guest(a, guest, lines=2)
    pid = vm_pid(a, vm)
    proxy = Proxy(b.t.port)
    try:
        dest = token(b, uuid)
        dest["url"] = f"http://127.0.0.1:{proxy.port}"
        task = start_migration(a, vm, dest, True, {})
        wait_phase(a.api, task, lambda r: r["other_config"].get("phase")
                   in ("prepare", "transfer"), 30, "the transfer")
        proxy.hold.set()
        # The destination resumes the VM and says RUNNING, held here.
        wait_for(lambda: (b.vm_record(uuid) or {}).get("power_state")
                 == "Running", 25, "the VM to run at the destination")
        rec = a.api.call("task.get_record", task)
        assert rec["status"] == "pending", rec
        print("held", proxy.held, "bytes; source phase",
              rec["other_config"].get("phase"))
        proxy.cut()

        rec = wait_task(a.api, task, timeout=30)
        print("source task:", rec["status"], rec["error_info"])
        assert rec["status"] == "success", (rec["error_info"],
                                            a.log_tail(30))
        # One copy: at B.  A has let its copy and record go.
        wait_for(lambda: not pid_alive(pid), 10, "the source QEMU to go")
        assert a.vm_by_uuid(uuid) is None
        dst = b.vm_record(uuid)
        assert dst["power_state"] == "Running", dst
        assert pid_alive(int(dst["domid"]))
        dcon = Console(b.console_path(uuid))
        st = dcon.wait_status(3, 20, "memcheck at the destination")
        assert all(s["errors"] == "0" for s in st), st[-3:]
        dcon.close()
    finally:
        proxy.close()
