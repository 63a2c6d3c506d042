"""Soak: many live migrations back and forth under API load.

Two ternds in network namespaces joined by a veth (tests/system/netns.py);
one memcheck guest moves A -> B -> A ... N times (default 200), peer to
peer across the veth, while two reader threads call VM.get_all_records in
a loop on both daemons and one watcher long-polls event.from on each.
Asserted: every migration succeeds, every MEMCHECK line on every console
says errors=0 and the heartbeat continues after each move, and the
readers and watchers never see an error.

Memory: ternd's bounded cache, the event ring (16 MiB of snapshots),
fills during the first migrations (each task is destroyed once read, as
XAPI clients do; ternd would keep it up to an hour otherwise), so the run starts with --warmup migrations (default 50),
then takes the start figures and runs N more.  Reported: each ternd's RSS
(VmRSS) and open file descriptors (/proc/<pid>/fd) at boot, after the
warm-up (start) and at the end, and every 50 migrations, written to
docs/reliability.md under '## Soak' (--docs).  Asserted as well: from
start to end RSS grows by less than FLAT_KIB_PER_MIGRATION per migration
and the descriptors by no more than FLAT_FDS (the readers' and watchers'
connections come and go).

    python3 bench/soak/soak.py [-n 200] [--warmup 50] [--docs docs/reliability.md]
"""

import argparse
import datetime
import os
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "system"))

from migration_helpers import (Console, create_guest,  # noqa: E402
                               start_migration, task_ok, wait_task)
from netns import NetnsPair, p2p_dest  # noqa: E402
from conftest import GUEST_BUILD  # noqa: E402
import subprocess  # noqa: E402

# "Flat": under 32 KiB a migration (6.4 MB over 200) and at most 8 more
# descriptors (a few API connections in flight).  RSS moves by a few MB
# with malloc_trim's minute (ternd's main.c) and the SQLite page cache
# filling to its 2 MB; the leaks this soak found cost 150 KiB and more a
# migration (docs/reliability.md, "Soak: findings").
FLAT_KIB_PER_MIGRATION = 32
FLAT_FDS = 8


def proc_figures(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class Load:
    """Readers and event watchers on both daemons, until stop()."""

    def __init__(self, pair):
        self.pair = pair
        self.halt = threading.Event()
        self.errors = []
        self.counts = {"reads": 0, "events": 0}
        self.threads = []
        for side in "ab":
            for fn in (self.reader, self.watcher):
                t = threading.Thread(target=fn, args=(side,), daemon=True)
                t.start()
                self.threads.append(t)

    def reader(self, side):
        api = self.pair.ternd[side].unix_xapi(30)
        while not self.halt.is_set():
            try:
                api.call("VM.get_all_records")
                self.counts["reads"] += 1
            except Exception as e:  # noqa: BLE001 - reported
                self.errors.append(f"reader {side}: {e!r}")
                return
            time.sleep(0.05)

    def watcher(self, side):
        api = self.pair.ternd[side].unix_xapi(30)
        token = ""
        while not self.halt.is_set():
            try:
                r = api.call("event.from", ["VM", "task"], token, 5.0)
                token = r["token"]
                self.counts["events"] += len(r.get("events", []))
            except Exception as e:  # noqa: BLE001 - reported
                self.errors.append(f"watcher {side}: {e!r}")
                return

    def stop(self):
        self.halt.set()
        for t in self.threads:
            t.join(15)


def check_console(con, what):
    st = con.status()
    bad = [s for s in st if s["errors"] != "0"]
    if bad or "MEMCHECK-ERROR" in con.text():
        raise SystemExit(f"memcheck errors {what}: {bad[-1:]}")
    return st


def soak(n, warmup, ring_kib):
    out = subprocess.run([str(GUEST_BUILD)], check=True, capture_output=True,
                         text=True, timeout=900).stdout
    paths = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    guest = paths["TERN_GUEST_KERNEL"], paths["TERN_GUEST_INITRD"]
    extra = ()
    if ring_kib:
        conf = Path(tempfile.mkdtemp(prefix="soak")) / "ternd.conf"
        conf.write_text(f"[daemon]\nevent_ring_kib = {ring_kib}\n")
        extra = ("-f", str(conf))
    with NetnsPair(extra_args=extra) as pair:
        hosts = [pair.a, pair.b]
        vm = create_guest(pair.a, guest)
        pair.a.api.call("VM.start", vm, False, False)
        uuid = pair.a.api.call("VM.get_uuid", vm)
        con = Console(pair.a.console_path(uuid))
        con.wait_status(2, 120, "the guest to boot")
        boot = {s: proc_figures(pair.pid(s)) for s in "ab"}
        start = None
        load = Load(pair)
        t0 = time.monotonic()
        durations = []
        series = []     # (migrations, {side: figures}) every 50
        lines = 0
        for i in range(warmup + n):
            if i == warmup:
                start = {s: proc_figures(pair.pid(s)) for s in "ab"}
                t0 = time.monotonic()
                durations = []
            src, dst = hosts[i % 2], hosts[(i + 1) % 2]
            ref = src.vm_by_uuid(uuid)
            t = time.monotonic()
            task = start_migration(src, ref, p2p_dest(dst))
            task_ok(wait_task(src.api, task, timeout=120))
            # As XAPI clients do (xe, XenCenter): the task goes once read.
            src.api.call("task.destroy", task)
            durations.append(time.monotonic() - t)
            lines += len(check_console(con, f"before hop {i}"))
            con.close()
            con = Console(dst.console_path(uuid))
            con.wait_status(2, 30, f"2 MEMCHECK lines after hop {i}")
            check_console(con, f"after hop {i}")
            if load.errors:
                raise SystemExit(f"API load failed at hop {i}: "
                                 f"{load.errors}")
            if (i + 1) % 50 == 0:
                series.append((i + 1, {s: proc_figures(pair.pid(s))
                                       for s in "ab"}))
            if (i + 1) % 10 == 0:
                print(f"{i + 1}/{warmup + n} migrations, last "
                      f"{durations[-1]:.1f} s", flush=True)
        load.stop()
        end = {s: proc_figures(pair.pid(s)) for s in "ab"}
        lines += len(check_console(con, "at the end"))
        con.close()
        if load.errors:
            raise SystemExit(f"API load failed: {load.errors}")
        return {
            "n": n, "warmup": warmup, "boot": boot, "ring_kib": ring_kib,
            "wall_s": round(time.monotonic() - t0, 1),
            "mean_s": round(sum(durations) / len(durations), 2),
            "max_s": round(max(durations), 2), "start": start, "end": end,
            "reads": load.counts["reads"], "events": load.counts["events"],
            "memcheck_lines": lines, "series": series,
        }


def write_docs(path, r):
    when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node()}, {os.cpu_count()} CPUs"
    rows = "\n".join(
        f"| {s.upper()} | {r['boot'][s]['rss_kib']} | "
        f"{r['start'][s]['rss_kib']} | {r['end'][s]['rss_kib']} | "
        f"{r['boot'][s]['fds']} | {r['start'][s]['fds']} | "
        f"{r['end'][s]['fds']} |" for s in "ab")
    block = (
        "## Soak\n\n"
        "`bench/soak/soak.py -n N`: N live peer-to-peer migrations back "
        "and forth of a memcheck guest between two ternds in network "
        "namespaces, with VM.get_all_records readers and event.from "
        "watchers on both daemons all the while.\n\n"
        f"Measured {when} on {machine} with `bench/soak/soak.py -n "
        f"{r['n']} --warmup {r['warmup']}"
        + (f" --ring-kib {r['ring_kib']}" if r.get("ring_kib") else "")
        + f"` (RSS flat means under {FLAT_KIB_PER_MIGRATION} KiB a "
        f"migration after the warm-up): {r['warmup']} migrations of "
        f"warm-up, then {r['n']} migrations in "
        f"{r['wall_s']} s (mean {r['mean_s']} s, max {r['max_s']} s), "
        f"memcheck errors 0 over {r['memcheck_lines']} status lines, "
        f"{r['reads']} reads and {r['events']} events without an error.\n\n"
        "| ternd | RSS boot (KiB) | RSS start (KiB) | RSS end (KiB) | "
        "fds boot | fds start | fds end |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n" + rows + "\n\n"
        "Growth per migration after the warm-up: " + ", ".join(
            f"{s.upper()} RSS "
            f"{(r['end'][s]['rss_kib'] - r['start'][s]['rss_kib']) / r['n']:.0f}"
            f" KiB, fds "
            f"{(r['end'][s]['fds'] - r['start'][s]['fds']) / r['n']:.2f}"
            for s in "ab") + ".\n\n"
        "Along the way, counted from boot (the event ring fills first: "
        "it keeps the newest 8,192 events or 16 MiB of snapshots in "
        "memory, and RSS rises until it is full; see docs/api.md):\n\n"
        "| after | A RSS (KiB) | A fds | B RSS (KiB) | B fds |\n"
        "| --- | --- | --- | --- | --- |\n" + "\n".join(
            f"| {k} | {f['a']['rss_kib']} | {f['a']['fds']} | "
            f"{f['b']['rss_kib']} | {f['b']['fds']} |"
            for k, f in r.get("series", [])) + "\n")
    p = Path(path)
    text = p.read_text() if p.exists() else "# Reliability\n\n"
    m = re.search(r"^## Soak\n.*?(?=^## |\Z)", text, re.S | re.M)
    text = (text[:m.start()] + block + "\n" + text[m.end():]) if m else \
        text.rstrip("\n") + "\n\n" + block
    p.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ring-kib", type=int, default=0,
                    help="ternd's [daemon] event_ring_kib (0: its default)")
    ap.add_argument("--docs", default=None)
    a = ap.parse_args()
    r = soak(a.n, a.warmup, a.ring_kib)
    print(r)
    if a.docs:
        write_docs(a.docs, r)
    bad = [f"{s.upper()}: RSS {r['start'][s]['rss_kib']} -> "
           f"{r['end'][s]['rss_kib']} KiB, fds {r['start'][s]['fds']} -> "
           f"{r['end'][s]['fds']}" for s in "ab"
           if r["end"][s]["rss_kib"] - r["start"][s]["rss_kib"] >
           FLAT_KIB_PER_MIGRATION * r["n"] or
           r["end"][s]["fds"] - r["start"][s]["fds"] > FLAT_FDS]
    if bad:
        raise SystemExit("not flat: " + "; ".join(bad))


if __name__ == "__main__":
    main()
