"""The fault matrix of SAFETY.md: every fault at every migration phase.

Each cell is one live, peer-to-peer migration of the memcheck guest from
host A to host B, each host a ternd in a network namespace of its own
joined by a veth (tests/system/netns.py), with one fault injected at one
phase.  To hit a phase reliably the ternds run with TERN_TEST_HOLD
(src/migrate/testhook.c) and the cell arms one hold: the migration
stops at that phase's entry, the
fault is injected, then the hold is released so the migration meets the
fault in that phase.  The transfer phase needs no hold: the stream is
capped at 2 MiB/s so it lasts several seconds.

    phase       where it is held
    connect     src-connect   (p2p login to the destination, worker thread)
    qualify     src-qualify   (before the control channel opens)
    prepare     src-prepare   (destination QEMU waiting, before our QEMU
                               is prepared)
    transfer    (none)        stream running, >= 1 MiB sent
    switchover  src-switchover (source QEMU paused before the switchover,
                               journaled)
    confirm     dst-running   (destination resumed the VM, source not yet
                               told)

A cell PASSes when, after the fault has healed, within BOUND_S seconds:
  1. exactly one QEMU runs the VM (in either namespace), its record says
     Running, its console keeps printing MEMCHECK lines, and every line of
     both consoles says errors=0;
  2. each host's records agree with its processes: the other host has no
     record, no QEMU and no run directory for the VM, and no record on
     either host claims a QEMU that is not there;
  3. the source's task has ended (or was lost with the daemon that held
     it) and says why;
  4. while the fault lasted, every API call to a daemon that was not
     frozen answered within PROBE_TIMEOUT_S.
A VM left paused (no new MEMCHECK lines) is a FAILED cell.  One exception
to 1: a source QEMU killed before the destination has the whole VM (or
the destination's QEMU killed after the switchover) destroys the only
copy; that cell passes with the VM Halted where that copy was and
nothing on the other host.

Usage:
    tools/fault-matrix.sh [--jobs N] [--faults a,b] [--phases x,y]
                          [--out results.jsonl] [--docs docs/reliability.md]
    python3 tests/matrix/matrix.py --cell FAULT@PHASE    # one cell, JSON out

Each cell runs in a child process of its own, bounded by CELL_TIMEOUT_S.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "system"))

import pytest  # noqa: E402  (pytest.fail is how the helpers fail)

from conftest import GUEST_BUILD, XapiFailure, pid_alive  # noqa: E402
from migration_helpers import (Console, create_guest,  # noqa: E402
                               start_migration)
from netns import NetnsPair, p2p_dest, pids_in_ns  # noqa: E402

PHASES = ["connect", "qualify", "prepare", "transfer", "switchover",
          "confirm"]
FAULTS = ["src-kill", "dst-kill", "src-freeze10-kill", "dst-freeze10-kill",
          "src-freeze30", "dst-freeze30", "src-qemu-kill", "dst-qemu-kill",
          "link-5s", "link-120s"]
HOLD = {"connect": ("a", "src-connect"), "qualify": ("a", "src-qualify"),
        "prepare": ("a", "src-prepare"),
        "switchover": ("a", "src-switchover"),
        "confirm": ("b", "dst-running")}
BOUND_S = 90           # fault healed -> decided state
PROBE_TIMEOUT_S = 5    # every API call during the fault
CELL_TIMEOUT_S = 600
FAILED_CALL = pytest.fail.Exception


class CellFailed(Exception):
    pass


def guest_paths():
    out = subprocess.run([str(GUEST_BUILD)], check=True, capture_output=True,
                         text=True, timeout=900).stdout
    paths = dict(l.split("=", 1) for l in out.splitlines() if "=" in l)
    return paths["TERN_GUEST_KERNEL"], paths["TERN_GUEST_INITRD"]


def deadline_loop(seconds, interval=0.2):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        yield
        time.sleep(interval)


class Cell:
    def __init__(self, fault, phase, guest):
        self.fault, self.phase, self.guest = fault, phase, guest
        self.notes = []
        self.violations = []
        self.frozen = set()
        self.down = set()

    # ---- helpers ------------------------------------------------------
    def hold_file(self):
        side, name = HOLD[self.phase]
        return self.pair.hold_dir[side] / f"{name}.held"

    def release(self):
        if self.phase in HOLD:
            try:
                self.hold_file().unlink()
            except FileNotFoundError:
                pass

    def probe(self, seconds):
        """Waits SECONDS while calling every daemon that is up (not frozen,
        not killed); a call that does not answer within PROBE_TIMEOUT_S is
        a violation of condition 4."""
        for _ in deadline_loop(seconds, 1.0):
            for side in "ab":
                if side in self.frozen or side in self.down:
                    continue
                h = self.pair.host[side]
                t0 = time.monotonic()
                try:
                    h.api.call("VM.get_all_records")
                    if side == "a" and self.task:
                        try:
                            h.api.call("task.get_record", self.task)
                        except XapiFailure:
                            pass
                except (OSError, XapiFailure) as e:
                    dt = time.monotonic() - t0
                    if dt >= PROBE_TIMEOUT_S - 0.5:
                        self.violations.append(
                            f"{side.upper()} API did not answer within "
                            f"{PROBE_TIMEOUT_S} s during the fault ({e!r})")
                        return

    def api_with_timeout(self, side, timeout):
        h = self.pair.host[side]
        return h.t.unix_xapi(timeout)

    # ---- the fault ----------------------------------------------------
    def inject(self):
        f, p = self.fault, self.pair
        side = "a" if f.startswith("src") else "b"
        if f in ("src-kill", "dst-kill"):
            p.kill(side)
            self.down.add(side)
            self.release()
            p.restart(side)
            self.down.discard(side)
        elif f.endswith("freeze10-kill") or f.endswith("freeze30"):
            secs = 10 if "freeze10" in f else 30
            p.freeze(side)
            self.frozen.add(side)
            self.release()
            self.probe(secs)
            if f.endswith("kill"):
                p.kill(side)
                self.frozen.discard(side)
                p.restart(side)
            else:
                p.thaw(side)
                self.frozen.discard(side)
        elif f.endswith("qemu-kill"):
            pid = p.ternd[side].vm_pids().get(self.uuid)
            if pid is None or not pid_alive(pid):
                self.release()
                raise NotApplicable(f"no {side.upper()} QEMU in this phase")
            os.kill(pid, signal.SIGKILL)
            self.release()
        elif f.startswith("link-"):
            secs = int(f[5:-1])
            p.link_down()
            self.release()
            self.probe(secs)
            p.link_up()
        else:
            raise ValueError(f)

    # ---- judging ------------------------------------------------------
    def qemus(self, side):
        """Pids of QEMUs in SIDE's namespace that run this VM."""
        out = []
        for pid in pids_in_ns(self.pair.ns[side], "qemu"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.uuid.encode() in f.read():
                        out.append(pid)
            except OSError:
                pass
        return out

    def state(self):
        """What each host has: {side: (record power_state or None,
        [qemu pids], run dir exists, [other records' problems])}."""
        st = {}
        for side in "ab":
            h = self.pair.host[side]
            rec = h.vm_record(self.uuid)
            ps = rec["power_state"] if rec else None
            rundir = (h.t.run_dir / "vms" / self.uuid).exists()
            st[side] = (ps, self.qemus(side), rundir)
        return st

    def task_state(self):
        """(ended, text) for the source's task."""
        try:
            rec = self.pair.a.api.call("task.get_record", self.task)
        except XapiFailure as e:
            if e.code == "HANDLE_INVALID":
                return True, "task lost with the source daemon"
            raise
        if rec["status"] in ("pending", "cancelling"):
            return False, f"pending ({rec['other_config'].get('phase')})"
        if rec["status"] == "success":
            return True, "success"
        return True, f"{rec['status']}: {' '.join(rec['error_info'])}"

    def lost_by_fault(self, st):
        """The source QEMU killed before the destination had the whole
        VM: the fault itself destroyed the only copy, so the right end is
        the VM Halted at the source and nothing at the destination."""
        if self.fault == "dst-qemu-kill" and self.phase == "confirm":
            # After the switchover the destination's QEMU is the copy.
            return (st["b"][0] == "Halted" and not st["b"][1]
                    and st["a"] == (None, [], False))
        return (self.fault == "src-qemu-kill" and self.phase != "confirm"
                and st["a"][0] == "Halted" and not st["a"][1]
                and st["b"] == (None, [], False))

    def decided(self, st):
        """None when decided and consistent, else what is wrong."""
        if self.lost_by_fault(st):
            return None
        holders = [s for s in "ab" if st[s][0] is not None]
        problems = []
        if len(st["a"][1]) + len(st["b"][1]) != 1:
            problems.append(f"QEMUs running the VM: "
                            f"A={st['a'][1]} B={st['b'][1]}")
        if len(holders) != 1:
            problems.append(f"records: A={st['a'][0]} B={st['b'][0]}")
        for s in "ab":
            ps, q, rundir = st[s]
            if ps in ("Running", "Paused") and not q:
                problems.append(f"{s.upper()} record {ps} without a QEMU")
            if q and ps not in ("Running", "Paused"):
                problems.append(f"{s.upper()} QEMU {q} with record {ps}")
            if ps is None and rundir:
                problems.append(f"{s.upper()} leftover run directory")
        if holders and st[holders[0]][0] != "Running":
            problems.append(f"{holders[0].upper()} record is "
                            f"{st[holders[0]][0]}, not Running")
        return "; ".join(problems) or None

    def memcheck(self, side):
        """New MEMCHECK lines on SIDE's console, every line errors=0."""
        con = Console(self.pair.host[side].console_path(self.uuid))
        n0 = len(con.status())
        for _ in deadline_loop(20, 0.2):
            if len(con.status()) >= n0 + 2:
                break
        st = con.status()
        text = con.text()
        con.close()
        bad = [s for s in st if s["errors"] != "0"]
        if "MEMCHECK-ERROR" in text or bad:
            return f"memcheck errors on {side.upper()}: {bad[-1:]}"
        if len(st) < n0 + 2:
            return (f"VM on {side.upper()} does not run (no new MEMCHECK "
                    f"lines in 20 s; paused?)")
        src_bad = [s for s in self.src_con.status() if s["errors"] != "0"]
        if src_bad or "MEMCHECK-ERROR" in self.src_con.text():
            return f"memcheck errors on the source: {src_bad[-1:]}"
        return None

    # ---- the cell -----------------------------------------------------
    def run(self):
        t_start = time.monotonic()
        self.task = None
        self.pair = NetnsPair(hold=True)
        try:
            return self._run(t_start)
        finally:
            self.pair.close()

    def _run(self, t_start):
        p = self.pair
        # A loaded machine boots the guest slowly: wait up to 120 s.
        vm = create_guest(p.a, self.guest)
        p.a.api.call("VM.start", vm, False, False)
        self.uuid = p.a.api.call("VM.get_uuid", vm)
        self.src_con = Console(p.a.console_path(self.uuid))
        self.src_con.wait_status(2, 120, "the guest to boot")
        self.injected = False
        opts = {"bandwidth": "2"} if self.phase == "transfer" else {}
        if self.phase in HOLD:
            side, name = HOLD[self.phase]
            (p.hold_dir[side] / f"{name}.arm").touch()
        self.task = start_migration(p.a, vm, p2p_dest(p.b), True, opts)
        if self.phase in HOLD:
            hf = self.hold_file()
            for _ in deadline_loop(60, 0.05):
                if hf.exists():
                    break
            else:
                raise CellFailed(f"never reached the {self.phase} hold: "
                                 f"{self.task_state()[1]}")
        else:
            for _ in deadline_loop(60, 0.05):
                rec = p.a.api.call("task.get_record", self.task)
                oc = rec["other_config"]
                if oc.get("phase") == "transfer" and \
                        int(oc.get("transferred_bytes", "0") or 0) > 2 ** 20:
                    break
                if rec["status"] not in ("pending", "cancelling"):
                    raise CellFailed("migration ended before the transfer")
            else:
                raise CellFailed("never reached 1 MiB transferred")
        t_fault = time.monotonic()
        self.injected = True
        try:
            self.inject()
        except NotApplicable:
            raise
        t_healed = time.monotonic()
        # A restarted daemon gets a fresh session.
        for s in "ab":
            p.host[s].restart_api()
        if self.phase == "transfer":
            # The fault has healed: lift the cap that made the transfer
            # last, or a 2 MiB/s stream may never converge.
            try:
                p.a.api.call("VM.migrate_set_bandwidth", vm, "1000")
            except (OSError, XapiFailure) as e:
                self.notes.append(f"bandwidth not lifted: {e}")
        last = None
        decided_at = None
        for _ in deadline_loop(BOUND_S, 0.5):
            ended, why = self.task_state()
            st = self.state()
            wrong = self.decided(st)
            last = (why, st, wrong)
            if ended and wrong is None:
                decided_at = time.monotonic()
                break
        why, st, wrong = last
        result = {
            "cell": f"{self.fault}@{self.phase}", "fault": self.fault,
            "phase": self.phase, "task": why,
            "fault_s": round(t_healed - t_fault, 1),
            "total_s": None,
        }
        problems = list(self.violations)
        if decided_at is None:
            problems.append(f"not decided {BOUND_S} s after the fault "
                            f"healed: task {why}; {wrong or 'records ok'}; "
                            + self.where(st))
        elif self.lost_by_fault(st):
            result["decided_s"] = round(decided_at - t_fault, 1)
            result["vm_on"] = "none (Halted: its only QEMU was killed)"
        else:
            result["decided_s"] = round(decided_at - t_fault, 1)
            winner = "a" if st["a"][1] else "b"
            result["vm_on"] = winner.upper()
            mc = self.memcheck(winner)
            if mc:
                problems.append(mc)
        result["outcome"] = "FAILED" if problems else "PASS"
        result["problems"] = problems
        result["total_s"] = round(time.monotonic() - t_start, 1)
        return result

    def where(self, st):
        def rundir(s):
            d = self.pair.host[s].t.run_dir / "vms" / self.uuid
            if not st[s][2]:
                return "no"
            return "[" + " ".join(sorted(str(f.relative_to(d))
                                         for f in d.rglob("*"))) + "]"
        return ", ".join(f"{s.upper()}: record={st[s][0]} qemu={st[s][1]} "
                         f"rundir={rundir(s)}" for s in "ab")


class NotApplicable(Exception):
    pass


def run_one(cell, guest):
    fault, phase = cell.split("@")
    c = Cell(fault, phase, guest)
    try:
        return c.run()
    except NotApplicable as e:
        return {"cell": cell, "fault": fault, "phase": phase,
                "outcome": "n/a", "problems": [str(e)]}
    except (Exception, FAILED_CALL) as e:  # noqa: BLE001 - reported
        # Before the fault, a failure is the harness's or the machine's
        # (a guest that would not boot), not the cell's.
        return {"cell": cell, "fault": fault, "phase": phase,
                "outcome": "FAILED" if getattr(c, "injected", False)
                else "ERROR",
                "problems": [f"harness: {type(e).__name__}: "
                             f"{str(e)[:400]}"] + c.violations}


def run_child(cell, out):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", cell]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=CELL_TIMEOUT_S)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        res = json.loads(lines[-1]) if lines else {
            "cell": cell, "outcome": "FAILED",
            "problems": [f"cell crashed: {r.stderr[-400:]}"]}
    except subprocess.TimeoutExpired:
        res = {"cell": cell, "outcome": "FAILED",
               "problems": [f"cell exceeded {CELL_TIMEOUT_S} s"]}
    with open(out, "a") as f:
        f.write(json.dumps(res) + "\n")
    print(f"{res['cell']:32} {res['outcome']:6} "
          f"{res.get('decided_s', '-')}  {'; '.join(res.get('problems', []))[:200]}",
          flush=True)
    return res


def table(results):
    order = {c: i for i, c in enumerate(FAULTS)}
    porder = {p: i for i, p in enumerate(PHASES)}
    results = sorted(results, key=lambda r: (order.get(r.get("fault"), 99),
                                             porder.get(r.get("phase"), 99)))
    rows = ["| cell | outcome | s to decided | task | what was wrong |",
            "| --- | --- | --- | --- | --- |"]
    for r in results:
        why = re.sub(r"OpaqueRef:[0-9a-f-]+ ?", "",
                     "; ".join(r.get("problems", []))).replace("|", "/")
        rows.append(f"| {r['cell']} | {r['outcome']} | "
                    f"{r.get('decided_s', '-')} | "
                    f"{re.sub(r'OpaqueRef:[0-9a-f-]+ ?', '', str(r.get('task', '-'))).replace('|', '/')[:200]} | "
                    f"{why[:400]} |")
    return rows


def write_docs(path, results, argv):
    n = {k: sum(1 for r in results if r["outcome"] == k)
         for k in ("PASS", "FAILED", "n/a", "ERROR")}
    machine = (f"{platform.node()}, {os.cpu_count()} CPUs, "
               f"{platform.platform()}")
    when = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    body = [
        "## Fault matrix",
        "",
        "The faults of SAFETY.md at each phase of a live peer-to-peer "
        "migration between two ternds in network namespaces "
        "(tests/matrix/matrix.py, how to run it: *Running the tiers* "
        "below).  Each cell is judged by the four conditions; the "
        f"bound for a decided state is {BOUND_S} s after the fault "
        f"healed, and every API call during the fault must answer within "
        f"{PROBE_TIMEOUT_S} s.  'seconds to decided' counts from the "
        "fault's injection (it includes the fault's own length).  "
        "'task lost' means the source daemon was killed and its task "
        "(kept in memory) went with it; the VM's state is still judged.  "
        "n/a: the phase has no such process yet.  A source QEMU killed "
        "before the destination has the whole VM passes with the VM "
        "Halted at the source and nothing at the destination.",
        "",
        f"Measured {when} on {machine}; command `{' '.join(argv)}`: "
        f"{n['PASS']} passed, {n['FAILED']} failed, {n['n/a']} not "
        f"applicable, {n['ERROR']} not run (ERROR: the harness or the "
        "machine failed before the fault, e.g. a guest that would not "
        "boot).",
        "",
        *table(results),
        "",
    ]
    p = Path(path)
    text = p.read_text() if p.exists() else (
        "# Reliability\n\nWhat tern's safety promise (SAFETY.md) is worth, "
        "as measured.\n\n")
    m = re.search(r"^## Fault matrix\n.*?(?=^## |\Z)", text,
                  re.S | re.M)
    block = "\n".join(body) + "\n"
    text = (text[:m.start()] + block + text[m.end():]) if m else \
        text.rstrip("\n") + "\n\n" + block
    p.write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--cells", help="comma-separated FAULT@PHASE list")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "build" /
                                         "fault-matrix.jsonl"))
    ap.add_argument("--docs", default=None,
                    help="write the table into this file's "
                         "'## Fault matrix' section")
    ap.add_argument("--from-results", action="store_true",
                    help="only write the docs from --out")
    a = ap.parse_args()
    if a.cell:
        print(json.dumps(run_one(a.cell, guest_paths())), flush=True)
        return 0
    if a.from_results:
        # Several files (comma-separated): a later run of a cell replaces
        # an earlier one; cells of the full matrix missing from all of
        # them are listed as not run.
        by_cell = {}
        for f in a.out.split(","):
            for l in open(f):
                if l.strip():
                    r = json.loads(l)
                    by_cell[r["cell"]] = r
        for f in FAULTS:
            for ph in PHASES:
                by_cell.setdefault(f"{f}@{ph}", {
                    "cell": f"{f}@{ph}", "fault": f, "phase": ph,
                    "outcome": "ERROR", "problems": ["not run"]})
        results = list(by_cell.values())
    else:
        guest_paths()  # build the guest once, before the children
        cells = a.cells.split(",") if a.cells else [
            f"{f}@{p}" for f in a.faults.split(",")
            for p in a.phases.split(",")]
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text("")
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
            results = list(ex.map(lambda c: run_child(c, a.out), cells))
    if a.docs:
        write_docs(a.docs, results, ["tools/fault-matrix.sh"] + sys.argv[1:])
    return 1 if any(r["outcome"] == "FAILED" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
