"""Predicted against actual migration time over a range of dirty rates.

Two ternd hosts on loopback (HTTPS), one test guest whose memcheck rewrites
memory at RATE MiB/s.  For each rate: VM.migrate_check (probe the channel,
measure the guest's dirty rate, predict), then the migration itself, and the
ratio of the prediction to what happened (the task's total_ms).  One warm-up
migration first, as a host would have in its history: the prediction uses
the stream rate QEMU reached on earlier migrations of the same mode.
Writes a Markdown table on stdout; see run.sh.
"""
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ternbench import TERND, TOP, boot_files, guest, local_proxy  # noqa: E402
RATES = [int(r) for r in os.environ.get("RATES", "0 8 24 48 96").split()]
MEM_MIB = int(os.environ.get("MEMORY_MIB", "512"))
MC_MIB = int(os.environ.get("MC_MIB", "256"))
ROUNDS = int(os.environ.get("ROUNDS", "4"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Host:
    def __init__(self, root, name):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.boot = boot_files(self.dir + "/state", *guest())
        self.proc = subprocess.Popen(
            [TERND, "-F", "--state-dir", self.dir + "/state", "--run-dir",
             self.dir + "/run", "--listen", "127.0.0.1:%d" % self.port,
             "--accel", "tcg"], stderr=open(self.dir + "/log", "w"))
        sock = self.dir + "/run/ternd.sock"
        deadline = time.time() + 20
        while not os.path.exists(sock):
            if time.time() > deadline:
                raise RuntimeError("ternd did not start")
            time.sleep(0.05)
        self.x = local_proxy(sock)
        self.s = self.call("session.login_with_password", "root", "", "1", "b")
        self.host = self.call("session.get_this_host", self.s, self.s)

    def call(self, method, *args):
        f = self.x
        for part in method.split("."):
            f = getattr(f, part)
        r = f(*args)
        if r["Status"] != "Success":
            raise RuntimeError("%s: %s" % (method, r["ErrorDescription"]))
        return r["Value"]

    def stop(self):
        for p in os.popen("cat %s/run/vms/*/qemu.pid 2>/dev/null" % self.dir):
            try:
                os.kill(int(p), 9)
            except (ValueError, OSError):
                pass
        self.proc.terminate()
        self.proc.wait()


def wait_lines(h, vm, n):
    deadline = time.time() + 60
    while time.time() < deadline:
        log = h.call("VM.get_console_log", h.s, vm, "4000")
        if len(re.findall(r"MEMCHECK seq=", log)) >= n:
            return
        time.sleep(0.25)
    raise RuntimeError("the guest printed no memcheck lines")


def migrate(a, b, vm):
    m = b.call("host.migrate_receive", b.s, b.host, "OpaqueRef:NULL", {})
    t = a.call("Async.VM.migrate_send", a.s, vm, m, True, {}, {}, {})
    deadline = time.time() + 300
    while a.call("task.get_status", a.s, t) == "pending":
        if time.time() > deadline:
            raise RuntimeError("migration did not end")
        time.sleep(0.05)
    rec = a.call("task.get_record", a.s, t)
    if rec["status"] != "success":
        raise RuntimeError("migration failed: %s" % rec["error_info"])
    return rec["result"], rec["other_config"]


def main():
    kernel, initrd = guest()
    root = tempfile.mkdtemp(prefix="tern-predict-")
    rows = []
    try:
        for rate in RATES:
            a, b = Host(root, "a%d" % rate), Host(root, "b%d" % rate)
            try:
                vm = a.call("VM.create", a.s, {
                    "name_label": "p", "memory_static_max": str(MEM_MIB << 20),
                    "PV_kernel": os.path.basename(kernel),
                    "PV_ramdisk": os.path.basename(initrd),
                    "PV_args": "console=ttyS0 quiet memcheck.mib=%d "
                               "memcheck.rate=%d memcheck.interval_ms=500"
                               % (MC_MIB, rate)})
                a.call("VM.start", a.s, vm, False, False)
                wait_lines(a, vm, 3)
                # Warm-up: both hosts learn what QEMU reaches here, each
                # from a migration made as the measured ones are (the
                # guest settled first, not just resumed).
                vm, _ = migrate(a, b, vm)
                wait_lines(b, vm, 2)
                vm, _ = migrate(b, a, vm)
                for r in range(ROUNDS):
                    src, dst = (a, b) if r % 2 == 0 else (b, a)
                    wait_lines(src, vm, 2)
                    m = dst.call("host.migrate_receive", dst.s, dst.host,
                                 "OpaqueRef:NULL", {})
                    chk = src.call("VM.migrate_check", src.s, vm, m, {})
                    p = chk.get("prediction", {})
                    vm, oc = migrate(src, dst, vm)
                    actual = int(oc["total_ms"]) / 1000.0
                    pred = float(p.get("total_s", -1))
                    rows.append((rate, r, float(p.get("dirty_mib_s", 0)),
                                 float(p.get("rate_mib_s", 0)), pred, actual,
                                 int(oc.get("iteration", 0))))
                    print("rate %d round %d: predicted %.2f s, actual %.2f s"
                          % (rate, r, pred, actual), file=sys.stderr)
            finally:
                a.stop()
                b.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print("# Predicted against actual migration time\n")
    print("Run %s on %s (%s, %d CPUs); guest %d MiB, memcheck %d MiB "
          "rewritten at RATE MiB/s; tunnelled, secure (the defaults); one "
          "warm-up round trip per rate, then %d measured migrations.  "
          "Produced by bench/predict/run.sh.\n"
          % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             platform.node(), platform.platform(), os.cpu_count(), MEM_MIB,
             MC_MIB, ROUNDS))
    print("| memcheck rate MiB/s | round | measured dirty MiB/s | "
          "predicted stream MiB/s | predicted s | actual s | "
          "predicted / actual | within 30% |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    ok = 0
    for rate, r, dirty, srate, pred, actual, it in rows:
        ratio = pred / actual if actual > 0 and pred > 0 else float("nan")
        good = abs(ratio - 1) <= 0.30
        ok += good
        print("| %d | %d | %.1f | %.1f | %.2f | %.2f | %.2f | %s |"
              % (rate, r, dirty, srate, pred, actual, ratio,
                 "yes" if good else "**no**"))
    print("\n%d of %d predictions within 30%% of the actual time." %
          (ok, len(rows)))
    # The noise floor, from the same run: the same migration repeated
    # takes a different time on this machine.  An oracle that knew, in
    # hindsight, the median actual time at each rate would score this.
    oracle = 0
    spread = []
    for rate in RATES:
        acts = sorted(a for (rt, _, _, _, _, a, _) in rows if rt == rate)
        if not acts:
            continue
        med = acts[len(acts) // 2]
        oracle += sum(abs(med / a - 1) <= 0.30 for a in acts)
        spread.append("%d MiB/s: %.2f-%.2f s" % (rate, acts[0], acts[-1]))
    print("\nNoise floor (same run): actual times per rate %s.  An oracle "
          "predicting each rate's median actual time (known only in "
          "hindsight) is within 30%% for %d of %d."
          % ("; ".join(spread), oracle, len(rows)))


if __name__ == "__main__":
    main()
