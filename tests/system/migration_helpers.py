"""Helpers for the migration system tests (tests/system/test_migrate_*.py).

Two real `ternd` hosts on loopback (conftest's `Ternd`), the test guest
running memcheck, and the migration handshake as a client does it:

    dest = token(B, vm_uuid)                       # host.migrate_receive on B
    task = A.api.call("Async.VM.migrate_send", vm, dest, True, {}, {}, opts)
    rec = wait_task(A.api, task)

Every wait polls with a deadline.  The guest's serial console is read from
the console.log file in the host's run directory through a file descriptor
opened before the migration, so the source's last lines stay readable after
the source removes the file.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (TERND, TIME_SCALE, Ternd, XapiFailure, close_all,
                      guest_vm_record, pid_alive, wait_for)

STATUS_RE = re.compile(
    r"^MEMCHECK seq=(?P<seq>\d+) uptime_ms=(?P<uptime_ms>\d+) "
    r"verified=(?P<verified>\d+) errors=(?P<errors>\d+) "
    r"rewritten=(?P<rewritten>\d+) mib=(?P<mib>\d+)$")
# A status line cut by the switchover still names its seq.
LOOSE_SEQ_RE = re.compile(r"seq=(\d+)")

NULL = "OpaqueRef:NULL"


def memcheck_args(mib=16, rate=4, interval_ms=300):
    return (f"console=ttyS0 quiet memcheck.mib={mib} memcheck.rate={rate} "
            f"memcheck.interval_ms={interval_ms}")


class Host:
    """A started Ternd with an admin XML-RPC session (`api`)."""

    def __init__(self, ternd, name):
        self.t = ternd
        self.name = name
        self.api = ternd.xapi()

    @property
    def url(self):
        return self.t.url.rstrip("/")

    @property
    def run_dir(self):
        return self.t.run_dir

    def host_ref(self):
        return self.api.call("session.get_this_host", self.api.session)

    def vms(self):
        """{uuid: record} of the non-template VMs."""
        recs = self.api.call("VM.get_all_records")
        return {r["uuid"]: dict(r, ref=ref) for ref, r in recs.items()
                if not r.get("is_a_template") and not r.get("is_control_domain")}

    def vm_by_uuid(self, uuid):
        """The VM's ref, or None when this host has no such record."""
        try:
            return self.api.call("VM.get_by_uuid", uuid)
        except XapiFailure as e:
            if e.code in ("UUID_INVALID", "HANDLE_INVALID"):
                return None
            raise

    def vm_record(self, uuid):
        """The VM's record, or None when this host has no such record -
        also when it goes away between the lookup and the read (a
        destination that aborts a migration destroys its record)."""
        ref = self.vm_by_uuid(uuid)
        if ref is None:
            return None
        try:
            return self.api.call("VM.get_record", ref)
        except XapiFailure as e:
            if e.code == "HANDLE_INVALID":
                return None
            raise

    def qemu_pids(self):
        """{uuid: pid} of QEMU processes that are alive, from run files."""
        return {u: p for u, p in self.t.vm_pids().items() if pid_alive(p)}

    def console_path(self, uuid):
        return Path(self.run_dir) / "vms" / uuid / "console.log"

    def log_tail(self, n=60):
        return "\n".join(self.t.log_text().splitlines()[-n:])

    def restart_api(self):
        self.api = self.t.xapi()


def short_dir():
    """A short base directory: QEMU's QMP socket path (in RUN_DIR/vms/UUID/)
    must stay under 108 bytes, which pytest's tmp_path does not promise."""
    return Path(tempfile.mkdtemp(prefix="tm", dir="/tmp"))


class HidingTernd(Ternd):
    """A ternd in a mount namespace of its own where each directory of HIDE
    is covered by an empty tmpfs: a host that lacks files the other host,
    on the same filesystem, has."""

    def __init__(self, base, hide=(), **kw):
        self.hide = [str(h) for h in hide]
        super().__init__(base, **kw)

    def start(self, timeout=10):
        if not self.hide:
            return super().start(timeout)
        assert self.proc is None or self.proc.poll() is not None
        self.prepare_boot()
        self.log = open(self.log_path, "ab")
        mounts = " && ".join(f'mount -t tmpfs tmpfs "${{{i + 1}}}"'
                             for i in range(len(self.hide)))
        n = len(self.hide)
        script = f'{mounts} && shift {n} && exec "$@"'
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             script, "sh", *self.hide,
             str(TERND), "-F", "--state-dir", str(self.state_dir),
             "--run-dir", str(self.run_dir), "--socket", self.socket,
             "--listen", f"127.0.0.1:{self.port}", "--no-tls",
             "--log-level", "debug", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=self.env)
        wait_for(self._answers, timeout, "ternd to answer on its port")
        wait_for(lambda: os.path.exists(self.socket), timeout,
                 "ternd's unix socket")
        return self


def make_hosts(request, hide_on_b=()):
    """Generator behind the `hosts` fixture: two started hosts A and B,
    each a ternd on its own loopback port (B hiding HIDE_ON_B).  When the
    test fails, their directories (logs, journals) are kept and the end of
    both logs is printed."""
    base = short_dir()
    made = []
    failed_before = request.session.testsfailed
    try:
        for name, hide in (("a", ()), ("b", hide_on_b)):
            t = HidingTernd(base / name, hide)
            made.append(t)
            t.start()
        yield Host(made[0], "A"), Host(made[1], "B")
    finally:
        close_all(made)
        if request.session.testsfailed > failed_before:
            for t in made:
                print(f"\n--- {t.log_path} (kept) ---\n"
                      + "\n".join(t.log_text().splitlines()[-40:]))
        else:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def hosts(request):
    """Two started hosts A and B (see make_hosts)."""
    yield from make_hosts(request)


class Console:
    """Reads one QEMU console file through a descriptor kept open, so the
    text stays readable after ternd unlinks the file."""

    def __init__(self, path, timeout=20):
        self.path = Path(path)
        wait_for(lambda: self.path.exists(), timeout, f"{self.path} to exist")
        self.f = open(self.path, "rb")
        self.data = b""

    def lines(self):
        self.data += self.f.read()
        text = self.data.decode("utf-8", "replace")
        return [l.rstrip("\r") for l in text.split("\n")[:-1]]

    def text(self):
        self.lines()
        return self.data.decode("utf-8", "replace")

    def status(self):
        return [m.groupdict() for m in map(STATUS_RE.match, self.lines()) if m]

    def seqs(self):
        return [int(s["seq"]) for s in self.status()]

    def last_seq_loose(self):
        """The highest seq= on the console, counting a cut last line."""
        self.lines()
        found = LOOSE_SEQ_RE.findall(self.data.decode("utf-8", "replace"))
        return max(map(int, found)) if found else None

    def wait_status(self, n, timeout=30, what=None):
        """Waits for at least N complete status lines; returns them."""
        return wait_for(lambda: len(self.status()) >= n and self.status(),
                        timeout, what or f"{n} MEMCHECK lines in {self.path}",
                        interval=0.05)

    def close(self):
        self.f.close()


def create_guest(host, guest, name="guest", memory_mib=128, mib=16, rate=4,
                 interval_ms=300, kernel=None):
    rec = guest_vm_record(guest, name=name, memory_mib=memory_mib,
                          args=memcheck_args(mib, rate, interval_ms))
    if kernel is not None:
        rec["PV_kernel"] = str(kernel)
    return host.api.call("VM.create", rec)


def boot_guest(host, guest, lines=2, **kw):
    """Creates and starts the memcheck guest on HOST; waits for LINES status
    lines.  Returns (vm_ref, uuid, Console)."""
    vm = create_guest(host, guest, **kw)
    host.api.call("VM.start", vm, False, False)
    uuid = host.api.call("VM.get_uuid", vm)
    con = Console(host.console_path(uuid))
    boot_s = 40 * TIME_SCALE
    deadline = time.monotonic() + boot_s
    while len(con.status()) < lines:
        if time.monotonic() > deadline:
            pytest.fail(f"no {lines} MEMCHECK lines on {host.name} after "
                        f"{boot_s:g} s;"
                        f" power_state "
                        f"{host.api.call('VM.get_power_state', vm)}, console:\n"
                        + con.text()[-1500:] + "\nternd log:\n" + host.log_tail(30))
        time.sleep(0.05)
    return vm, uuid, con


def vm_pid(host, vm):
    return int(host.api.call("VM.get_domid", vm))


def token(dst, vm_uuid=None, options=None):
    """host.migrate_receive on DST: the destination map."""
    opts = dict(options or {})
    if vm_uuid is not None:
        opts.setdefault("vm", vm_uuid)
    return dst.api.call("host.migrate_receive", dst.host_ref(), NULL, opts)


def p2p_dest(dst, user="admin", password="adminpw"):
    return {"url": dst.url, "user": user, "password": password}


def start_migration(src, vm, dest, live=True, options=None):
    return src.api.call("Async.VM.migrate_send", vm, dest, live, {}, {},
                        dict(options or {}))


def wait_task(api, task, timeout=60, on_poll=None):
    """Polls task.get_record until the task has ended (neither 'pending'
    nor 'cancelling').  TIMEOUT scales with TIME_SCALE, as in wait_for."""
    timeout = timeout * TIME_SCALE
    deadline = time.monotonic() + timeout
    while True:
        rec = api.call("task.get_record", task)
        if on_poll:
            on_poll(rec)
        if rec["status"] not in ("pending", "cancelling"):
            return rec
        if time.monotonic() > deadline:
            pytest.fail(f"task {task} still pending after {timeout}s: {rec}")
        time.sleep(0.05)


def task_ok(rec):
    assert rec["status"] == "success", (rec["status"], rec["error_info"],
                                        rec["other_config"])
    return rec["result"]


def wait_phase(api, task, pred, timeout=30, what="migration phase"):
    """Polls the task until pred(record) holds (fails if the task ends
    first); returns the record."""
    def check():
        rec = api.call("task.get_record", task)
        if pred(rec):
            return rec
        if rec["status"] not in ("pending", "cancelling"):
            pytest.fail(f"task ended ({rec['status']}, {rec['error_info']}) "
                        f"before {what}: {rec['other_config']}")
        return None
    return wait_for(check, timeout, what, interval=0.05)


def transferred(rec):
    return int(rec["other_config"].get("transferred_bytes", "0") or 0)


def assert_gone(host, uuid, pid):
    """HOST has neither the VM's record nor its QEMU."""
    wait_for(lambda: not pid_alive(pid), 10, f"QEMU {pid} on {host.name} to die")
    assert host.vm_by_uuid(uuid) is None, f"{host.name} still has VM {uuid}"
    assert uuid not in host.qemu_pids()


def assert_no_vm(host, uuid):
    """HOST has no record and no QEMU for UUID (nothing ever arrived, or it
    was rolled back)."""
    wait_for(lambda: uuid not in host.qemu_pids(), 10,
             f"no QEMU for {uuid} on {host.name}")
    # A rollback is asynchronous: the record goes just after the QEMU.
    wait_for(lambda: host.vm_by_uuid(uuid) is None, 10,
             f"{host.name} to drop its record for {uuid}")


def assert_running(host, vm, pid=None):
    rec = host.api.call("VM.get_record", vm)
    assert rec["power_state"] == "Running", rec["power_state"]
    if pid is not None:
        assert int(rec["domid"]) == pid
    assert pid_alive(int(rec["domid"]))
    return rec


def assert_continues(src_con, dst_con, new_lines=3, timeout=30):
    """The memcheck sequence seen on the destination continues the
    source's: consecutive, no errors anywhere, and the first destination
    line follows the last one the source printed (one line may have been
    cut by the switchover).  Returns (last source seq, dest seqs)."""
    last_src = src_con.last_seq_loose()
    src_status = src_con.status()
    assert src_status and all(s["errors"] == "0" for s in src_status), \
        src_status[-3:]
    st = dst_con.wait_status(new_lines, timeout,
                             f"{new_lines} MEMCHECK lines on the destination")
    seqs = [int(s["seq"]) for s in st]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    assert last_src is not None
    assert last_src < seqs[0] <= last_src + 2, (last_src, seqs)
    assert all(s["errors"] == "0" for s in st), st
    return last_src, seqs


def kill9(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
