"""VM figures of issue 3: VM.start to the first memcheck line, ternd's RSS
with ten VMs running, and the QMP round trip.

Each tern figure has a baseline measured in the same run:
  - start: plain qemu-system-x86_64 with tern's command line, spawn to the
    first memcheck line on its serial console;
  - RSS: the same ternd idle, before any VM;
  - QMP: a minimal blocking client (Python, raw socket) against the same
    kind of QEMU, next to tern's asynchronous client (its unit test's timed
    loop, tests/unit/test-qmp.c).
Writes Markdown on stdout; see run.sh.
"""
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ternbench import TERND, TOP, boot_files, guest, local_proxy  # noqa: E402
ROUNDS = int(os.environ.get("ROUNDS", "5"))
ARGS = "console=ttyS0 quiet memcheck.mib=16 memcheck.rate=4 memcheck.interval_ms=200"


def wait_file_line(path, pattern, deadline_s=60):
    t_end = time.monotonic() + deadline_s
    while time.monotonic() < t_end:
        try:
            with open(path, errors="replace") as f:
                if re.search(pattern, f.read()):
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("no %r in %s" % (pattern, path))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def baseline_start(kernel, initrd, work):
    times = []
    for i in range(ROUNDS):
        log = os.path.join(work, "plain%d.log" % i)
        t0 = time.monotonic()
        p = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu",
             "qemu64", "-m", "%dK" % (256 * 1024 - 8), "-smp", "1",
             "-nodefaults", "-no-user-config", "-display", "none",
             "-kernel", kernel, "-initrd", initrd, "-append", ARGS,
             "-serial", "file:" + log])
        try:
            times.append((wait_file_line(log, r"MEMCHECK seq=0") - t0) * 1000)
        finally:
            p.kill()
            p.wait()
    return times


def qmp_plain_round_trip(work):
    sock = os.path.join(work, "q.sock")
    p = subprocess.Popen(["qemu-system-x86_64", "-machine", "none",
                          "-nodefaults", "-display", "none", "-qmp",
                          "unix:%s,server=on,wait=on" % sock])
    try:
        while not os.path.exists(sock):
            time.sleep(0.01)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        f = s.makefile("rw")
        f.readline()
        f.write('{"execute":"qmp_capabilities"}\n')
        f.flush()
        f.readline()
        n = 2000
        t0 = time.monotonic()
        for _ in range(n):
            f.write('{"execute":"query-status"}\n')
            f.flush()
            f.readline()
        return (time.monotonic() - t0) / n * 1e6
    finally:
        p.kill()
        p.wait()


def qmp_tern_round_trip():
    exe = os.path.join(TOP, "build/tests/unit/test-qmp")
    out = subprocess.run([exe, "-p", "/qmp/real-qemu", "--verbose"],
                         capture_output=True, text=True).stdout
    m = re.search(r"query-status round trip: ([\d.]+) us", out)
    return float(m.group(1)) if m else float("nan")


def main():
    kernel, initrd = guest()
    work = tempfile.mkdtemp(prefix="tern-bench-vm-")
    proc = None
    try:
        plain = baseline_start(kernel, initrd, work)
        d = os.path.join(work, "ternd")
        kname, iname = boot_files(d + "/state", kernel, initrd)
        proc = subprocess.Popen(
            [TERND, "-F", "--state-dir", d + "/state", "--run-dir",
             d + "/run", "--listen", "", "--accel", "tcg",
             "--log-level", "warning"])
        sockp = d + "/run/ternd.sock"
        while not os.path.exists(sockp):
            time.sleep(0.02)
        x = local_proxy(sockp)
        s = x.session.login_with_password("root", "", "1", "b")["Value"]
        idle = rss_kib(proc.pid)

        rec = {"name_label": "s", "memory_static_max": str(256 << 20),
               "PV_kernel": kname, "PV_ramdisk": iname, "PV_args": ARGS}
        vm = x.VM.create(s, rec)["Value"]
        uuid = x.VM.get_uuid(s, vm)["Value"]
        console = os.path.join(d, "run/vms", uuid, "console.log")
        tern = []
        for i in range(ROUNDS):
            t0 = time.monotonic()
            r = x.VM.start(s, vm, False, False)
            assert r["Status"] == "Success", r
            tern.append((wait_file_line(console, r"MEMCHECK seq=0") - t0)
                        * 1000)
            x.VM.hard_shutdown(s, vm)

        small = dict(rec, memory_static_max=str(80 << 20),
                     PV_args=ARGS.replace("mib=16", "mib=8"))
        vms = [x.VM.create(s, dict(small, name_label="t%d" % i))["Value"]
               for i in range(10)]
        for v in vms:
            assert x.VM.start(s, v, False, False)["Status"] == "Success"
        for v in vms:
            u = x.VM.get_uuid(s, v)["Value"]
            wait_file_line(os.path.join(d, "run/vms", u, "console.log"),
                           r"MEMCHECK seq=1")
        ten = rss_kib(proc.pid)
        for v in vms:
            x.VM.hard_shutdown(s, v)

        qp = qmp_plain_round_trip(work)
        qt = qmp_tern_round_trip()
    finally:
        if proc:
            for p in os.popen("cat %s/ternd/run/vms/*/qemu.pid 2>/dev/null" % work):
                try:
                    os.kill(int(p), 9)
                except (ValueError, OSError):
                    pass
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)

    mp, mt = statistics.median(plain), statistics.median(tern)
    print("# VM figures (issue 3)\n")
    print("Run %s on %s (%s, %d CPUs), QEMU under TCG; %d rounds. Produced "
          "by bench/vm/run.sh.\n" % (
              time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              platform.node(), platform.platform(), os.cpu_count(), ROUNDS))
    print("| figure | tern | baseline (same run) | ratio |")
    print("|---|---:|---:|---:|")
    print("| start to first memcheck line (median) | %.0f ms (VM.start) | "
          "%.0f ms (plain QEMU spawn) | %.2f |" % (mt, mp, mt / mp))
    print("| ternd RSS with ten VMs running | %.1f MiB | %.1f MiB (idle) | "
          "%.2f |" % (ten / 1024, idle / 1024, ten / idle))
    print("| QMP round trip (query-status) | %.1f µs (tern's async client) | "
          "%.1f µs (blocking Python client) | %.2f |" % (qt, qp, qt / qp))
    print("\nStart times, ms: tern %s; plain %s." % (
        ", ".join("%.0f" % t for t in tern), ", ".join("%.0f" % t for t in plain)))


if __name__ == "__main__":
    main()
