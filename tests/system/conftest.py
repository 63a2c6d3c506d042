"""Fixtures shared by tern's system tests.

Each test that needs a daemon gets a real `ternd` on a free loopback port
with its own temporary state and run directories (the `ternd` fixture, or
`Ternd(tmp_path)` directly for several).  Clients are Python's own
xmlrpc.client and a small JSON-RPC client over http.client, so the tests
see the wire exactly as any XAPI client does.

Nothing here sleeps blindly: every wait polls a condition with a deadline
(`wait_for`).  Teardown SIGTERMs the daemon and kills every QEMU whose pid
is in the run directory, because QEMU outlives ternd by design.

Sanitizers: every ternd and tern started here runs with ASAN_OPTIONS and
UBSAN_OPTIONS that write reports to files (`sanitizer_env`); a build
without sanitizers ignores them.  Teardown fails the test when a report
file exists or a daemon's log holds one (`sanitizer_reports`), so a build
with `-Db_sanitize=address,undefined` (TERN_BUILD_DIR=build-asan) turns
every AddressSanitizer, LeakSanitizer or UBSan report into a failure.
Deadlines in `wait_for` are multiplied by TERN_TEST_TIME_SCALE (default 3
for a sanitizer build, else 1), since such a build runs slower.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import xmlrpc.client
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TERN_BUILD_DIR", ROOT / "build"))
TERND = BUILD / "src" / "daemon" / "ternd"
TERN = BUILD / "src" / "cli" / "tern"
GUEST_BUILD = ROOT / "tools" / "guest" / "build.sh"

PV_ARGS = "console=ttyS0 quiet memcheck.mib=16 memcheck.rate=4 memcheck.interval_ms=300"
MIB = 1024 * 1024
LSAN_SUPP = ROOT / "tests" / "lsan.supp"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")


def _sanitized_build():
    """True when BUILD was configured with -Db_sanitize other than none."""
    try:
        opts = json.loads((BUILD / "meson-info" / "intro-buildoptions.json")
                          .read_text())
    except (OSError, ValueError):
        return False
    return any(o.get("name") == "b_sanitize" and o.get("value") != "none"
               for o in opts)


SANITIZED = _sanitized_build()
TIME_SCALE = float(os.environ.get("TERN_TEST_TIME_SCALE",
                                  "3" if SANITIZED else "1"))


def sanitizer_env(report_dir, env=None):
    """A copy of ENV (default os.environ) whose ASan/LSan reports go to
    files REPORT_DIR/asan.PID (UBSan's to REPORT_DIR/ubsan.PID in a build
    without ASan, else to stderr), and whose first report ends the
    process."""
    e = dict(os.environ if env is None else env)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    e["ASAN_OPTIONS"] = ("abort_on_error=0:halt_on_error=1:detect_leaks=1:"
                         "fast_unwind_on_malloc=0:"
                         f"log_path={report_dir / 'asan'}")
    e["LSAN_OPTIONS"] = f"suppressions={LSAN_SUPP}:print_suppressions=0"
    e["UBSAN_OPTIONS"] = ("print_stacktrace=1:halt_on_error=1:"
                          f"log_path={report_dir / 'ubsan'}")
    return e


def sanitizer_note_stderr(report_dir, what, stderr):
    """Keeps a sanitizer report found in a command's captured STDERR as a
    report file in REPORT_DIR: UBSan in a build with ASan prints to stderr
    whatever log_path says."""
    if stderr and any(m in stderr for m in SANITIZER_MARKS):
        n = len(list(Path(report_dir).glob("stderr-san.*")))
        (Path(report_dir) / f"stderr-san.{n}").write_text(
            f"{what}:\n{stderr}")


def sanitizer_reports(report_dir, logs=()):
    """The text of every sanitizer report in REPORT_DIR and of every log in
    LOGS that contains one; empty when there is none."""
    out = []
    for f in sorted(Path(report_dir).glob("*san.*")):
        out.append(f"--- {f} ---\n" + f.read_text(errors="replace"))
    for log in logs:
        try:
            text = Path(log).read_text(errors="replace")
        except OSError:
            continue
        if any(m in text for m in SANITIZER_MARKS):
            out.append(f"--- {log} ---\n" + text[-20000:])
    return "\n".join(out)


# Tests that run tern or ternd themselves (not through Ternd) inherit
# these: their reports land in one directory per session, checked after
# each test by the autouse fixture below.
SESSION_REPORTS = Path(tempfile.mkdtemp(prefix="tern-san-"))
os.environ.update(sanitizer_env(SESSION_REPORTS))


@pytest.fixture(autouse=True)
def _no_sanitizer_reports():
    yield
    found = sanitizer_reports(SESSION_REPORTS)
    if found:
        seen = SESSION_REPORTS / "seen"
        seen.mkdir(exist_ok=True)
        for f in SESSION_REPORTS.glob("*san.*"):
            f.rename(seen / f.name)
        pytest.fail("sanitizer report from a process the test ran:\n"
                    + found, pytrace=False)


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls PREDICATE until it returns a truthy value, which is returned.
    Fails the test naming WHAT after TIMEOUT (times TIME_SCALE) seconds."""
    timeout = timeout * TIME_SCALE
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            got = predicate()
            if got:
                return got
        except Exception as exc:  # noqa: BLE001 - reported on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}"
                        + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class XapiFailure(Exception):
    """A Failure reply: .code and .params from ErrorDescription."""

    def __init__(self, desc):
        super().__init__(desc)
        self.desc = list(desc)
        self.code = desc[0] if desc else None
        self.params = list(desc[1:])


def xcall(proxy, method, *args):
    """Calls METHOD on an xmlrpc ServerProxy, unwraps the XAPI envelope:
    returns Value or raises XapiFailure."""
    fn = proxy
    for part in method.split("."):
        fn = getattr(fn, part)
    reply = fn(*args)
    assert isinstance(reply, dict), reply
    if reply.get("Status") == "Success":
        return reply.get("Value")
    assert reply.get("Status") == "Failure", reply
    raise XapiFailure(reply["ErrorDescription"])


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Xapi:
    """An XML-RPC client with a session: x.call("VM.get_record", ref)
    passes the session first."""

    def __init__(self, url, session=None):
        self.proxy = xmlrpc.client.ServerProxy(url, allow_none=True)
        self.session = session

    def login(self, user, password):
        self.session = xcall(self.proxy, "session.login_with_password",
                             user, password, "1.0", "tern-tests")
        return self

    def call(self, method, *args):
        return xcall(self.proxy, method, self.session, *args)

    def raw(self, method, *args):
        return xcall(self.proxy, method, *args)


class JsonRpc:
    """A JSON-RPC client over http.client.  request() returns
    (status, headers, decoded body); call() unwraps or raises XapiFailure."""

    def __init__(self, port, version="2.0", session=None):
        self.port = port
        self.version = version
        self.session = session
        self.next_id = 1

    def request(self, body, path="/jsonrpc", ctype="application/json",
                timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            if not isinstance(body, (bytes, bytearray)):
                body = json.dumps(body).encode()
            conn.request("POST", path, body, {"Content-Type": ctype})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp, data
        finally:
            conn.close()

    def envelope(self, method, params):
        rid = self.next_id
        self.next_id += 1
        msg = {"method": method, "params": params, "id": rid}
        if self.version == "2.0":
            msg["jsonrpc"] = "2.0"
        return msg

    def raw(self, method, *params):
        msg = self.envelope(method, list(params))
        status, resp, data = self.request(msg)
        assert status == 200, (status, data)
        reply = json.loads(data)
        assert reply["id"] == msg["id"]
        if self.version == "2.0":
            assert reply.get("jsonrpc") == "2.0", reply
            if "error" in reply and reply["error"] is not None:
                err = reply["error"]
                raise XapiFailure([err["message"]] + list(err.get("data") or []))
            return reply["result"]
        if reply.get("error") is not None:
            raise XapiFailure(reply["error"])
        return reply["result"]

    def login(self, user, password):
        self.session = self.raw("session.login_with_password", user,
                                password, "1.0", "tern-tests")
        return self

    def call(self, method, *args):
        return self.raw(method, self.session, *args)


class Ternd:
    """One ternd process with its own directories.  start()/stop()/
    restart() keep the same state and run directories."""

    def __init__(self, base, extra_args=(), users=(("admin", "adminpw",
                                                     "pool-admin"),),
                 netns=None, host="127.0.0.1", env=None, tls=False):
        # NETNS: run under `ip netns exec NETNS` (its QEMUs too), listening
        # on HOST, an address of that namespace (tests/system/netns.py).
        self.netns = netns
        self.host = host
        self.tls = tls
        self.base = Path(base)
        self.state_dir = self.base / "state"
        # QMP sockets live in RUN_DIR/vms/<uuid>/ and a Unix socket path
        # has 108 bytes at most, so the run directory is short, not under
        # pytest's long tmp_path.
        self.run_dir = Path(tempfile.mkdtemp(prefix="tern-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket = str(self.run_dir / "ternd.sock")
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = self.base / "ternd.log"
        self.report_dir = self.base / "sanitizer"
        # ENV: extra variables for ternd (e.g. TERN_TEST_HOLD), on top of
        # the sanitizers' report settings.
        self.env = sanitizer_env(self.report_dir,
                                 dict(os.environ, **(env or {})))
        self.qemu_pids = set()
        for name, pw, role in users:
            self.user_add(name, pw, role)

    @property
    def url(self):
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}/"

    def admin(self, *args, input=None, check=True):
        p = subprocess.run([str(TERND), "--state-dir", str(self.state_dir),
                            *args], input=input, capture_output=True,
                           text=True, timeout=30, env=self.env)
        sanitizer_note_stderr(self.report_dir, "ternd " + " ".join(args),
                              p.stderr)
        if check:
            p.check_returncode()
        return p

    def user_add(self, name, password, role):
        self.admin("user", "add", name, "--role", role, input=password + "\n")

    @property
    def boot_dir(self):
        """The boot SR's directory ([storage] boot_dir's default)."""
        return self.state_dir / "boot"

    def prepare_boot(self):
        """Puts the test guest's vmlinuz and initrd.img into the boot SR
        (hard links to the build's files) before ternd starts."""
        link_boot_files(self.boot_dir)

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        self.prepare_boot()
        self.log = open(self.log_path, "ab")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        # TERND_WRAP: a profiler to run ternd under (e.g. "heaptrack -o
        # /tmp/ht"), for bench/soak's diagnosis; never set by the suite.
        prefix += os.environ.get("TERND_WRAP", "").split()
        self.proc = subprocess.Popen(
            prefix + [str(TERND), "-F", "--state-dir", str(self.state_dir),
             "--run-dir", str(self.run_dir), "--socket", self.socket,
             "--listen", f"{self.host}:{self.port}",
             *([] if self.tls else ["--no-tls"]),
             "--log-level", "debug", *self.extra_args],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=self.env)
        wait_for(self._answers, timeout, "ternd to answer on its port")
        wait_for(lambda: os.path.exists(self.socket), timeout,
                 "ternd's unix socket")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            pytest.fail(f"ternd exited with {self.proc.returncode}:\n"
                        + self.log_text()[-3000:])
        if self.netns or self.tls:
            # Another namespace's address is out of reach from here, and a
            # TLS port wants a context; the Unix socket is neither (a stale
            # one refuses the connection).
            try:
                return bool(self.unix_proxy(5).system.listMethods())
            except (OSError, http.client.HTTPException):
                return False
        try:
            reply = xmlrpc.client.ServerProxy(self.url).system.listMethods()
            return bool(reply)
        except (OSError, http.client.HTTPException):
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            return
        timeout *= TIME_SCALE
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("ternd did not exit within %ss of SIGTERM" % timeout)
        finally:
            self.log.close()

    def restart(self):
        self.stop()
        return self.start()

    def vm_pids(self):
        """{uuid: pid} from RUN_DIR/vms/*/qemu.pid."""
        out = {}
        for pidfile in self.run_dir.glob("vms/*/qemu.pid"):
            try:
                out[pidfile.parent.name] = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                pass
        return out

    def kill_qemus(self):
        pids = set(self.vm_pids().values()) | self.qemu_pids
        for pid in pids:
            if pid > 1 and pid_alive(pid):
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        if "qemu" not in f.read():
                            continue
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def sanitizer_reports(self):
        return sanitizer_reports(self.report_dir, [self.log_path])

    def close(self):
        """Stops ternd and its QEMUs; fails the test if ternd, its admin
        commands or the CLI run through tern() left a sanitizer report."""
        try:
            if self.alive():
                self.stop()
        finally:
            self.kill_qemus()
            shutil.rmtree(self.run_dir, ignore_errors=True)
        found = self.sanitizer_reports()
        if found:
            pytest.fail(f"sanitizer report from {self.base}:\n" + found,
                        pytrace=False)

    # Clients.
    def xapi(self, user="admin", password="adminpw"):
        return Xapi(self.url).login(user, password)

    def jsonrpc(self, version="2.0", user="admin", password="adminpw"):
        return JsonRpc(self.port, version).login(user, password)

    def unix_proxy(self, timeout=30):
        """An XML-RPC ServerProxy on the Unix socket; each call waits at
        most TIMEOUT seconds."""
        class T(xmlrpc.client.Transport):
            def make_connection(t, host):
                return UnixHTTPConnection(self.socket, timeout)
        return xmlrpc.client.ServerProxy("http://localhost/", transport=T(),
                                         allow_none=True)

    def unix_xapi(self, timeout=30):
        """Root on the Unix socket: any password."""
        x = Xapi("http://localhost/")
        x.proxy = self.unix_proxy(timeout)
        return x.login("root", "whatever")

    def tern(self, *args, remote=False, check=False, timeout=60, env=None):
        """Runs the CLI; returns CompletedProcess (text)."""
        e = dict(self.env)
        e.pop("TERN_USER", None)
        e.pop("TERN_PASSWORD", None)
        e["TERN_SOCKET"] = self.socket
        if env:
            e.update(env)
        cmd = [str(TERN)]
        if remote:
            pwfile = self.base / "pw"
            pwfile.write_text("adminpw\n")
            cmd += ["-c", f"http://127.0.0.1:{self.port}", "--user", "admin",
                    "--password-file", str(pwfile)]
        p = subprocess.run(cmd + list(args), capture_output=True,
                           text=True, timeout=timeout, env=e)
        sanitizer_note_stderr(self.report_dir, "tern " + " ".join(args),
                              p.stderr)
        if check:
            p.check_returncode()
        return p


def close_all(ternds):
    """Closes every ternd of TERNDS, then fails with every sanitizer
    report they left (one failing does not keep the others running)."""
    failures = []
    for t in ternds:
        try:
            t.close()
        except pytest.fail.Exception as exc:
            failures.append(str(exc))
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


@pytest.fixture
def ternd_factory(tmp_path):
    made = []

    def make(name="t", extra_args=(), start=True, **kw):
        t = Ternd(tmp_path / name, extra_args, **kw)
        made.append(t)
        if start:
            t.start()
        return t

    yield make
    close_all(made)


@pytest.fixture
def ternd(ternd_factory):
    return ternd_factory()


@pytest.fixture
def api(ternd):
    return ternd.xapi()


_guest_paths = None


def guest_files():
    """The test guest's kernel and initrd paths, built once (and cached by
    tools/guest/build.sh across runs)."""
    global _guest_paths
    if _guest_paths is None:
        out = subprocess.run([str(GUEST_BUILD)], check=True,
                             capture_output=True, text=True,
                             timeout=900).stdout
        paths = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
        _guest_paths = (paths["TERN_GUEST_KERNEL"],
                        paths["TERN_GUEST_INITRD"])
        assert all(os.path.isfile(p) for p in _guest_paths)
    return _guest_paths


# The names guests boot from: files of each ternd's boot SR
# (docs/storage.md), never host paths.
BOOT_KERNEL = "vmlinuz"
BOOT_INITRD = "initrd.img"


def link_boot_files(boot_dir):
    """Makes BOOT_KERNEL and BOOT_INITRD regular files of BOOT_DIR: hard
    links to the guest build (copies across filesystems)."""
    boot_dir = Path(boot_dir)
    boot_dir.mkdir(parents=True, exist_ok=True)
    for name, src in zip((BOOT_KERNEL, BOOT_INITRD), guest_files()):
        dst = boot_dir / name
        if dst.exists():
            continue
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)


@pytest.fixture(scope="session")
def guest():
    return guest_files()


def guest_vm_record(guest, name="guest", memory_mib=128, args=PV_ARGS,
                    vcpus=1):
    kernel, initrd = guest
    return {
        "name_label": name,
        "memory_static_max": str(memory_mib * MIB),
        "memory_dynamic_max": str(memory_mib * MIB),
        "VCPUs_max": str(vcpus),
        "VCPUs_at_startup": str(vcpus),
        "PV_kernel": BOOT_KERNEL,
        "PV_ramdisk": BOOT_INITRD,
        "PV_args": args,
    }
