"""The quick tier of the fault matrix: one cell per kind of fault.

The full matrix (tests/matrix/matrix.py, tools/fault-matrix.sh; every
fault of SAFETY.md at every migration phase) takes most of an hour, so it
runs outside the default suite.  This file runs one cell of each kind --
a daemon killed, a daemon that hangs and then dies, a daemon frozen and
resumed, a QEMU killed, the link cut (briefly, and for longer than the source's
first minute of asking after the switchover) -- through the same code, so the
default suite notices when one of them regresses.  Each cell is judged by
matrix.py's four conditions (one running copy with memcheck errors=0,
records agree with processes on both hosts, the task ended with a
reason, no API call waits past its deadline).
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "matrix"))

import matrix  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="network namespaces need root")

QUICK = [
    "dst-kill@prepare",
    "src-freeze10-kill@qualify",
    "dst-freeze30@transfer",
    "dst-qemu-kill@transfer",
    "link-5s@qualify",
    "src-qemu-kill@transfer",
    # Past the point of no return the source asks the destination until
    # it answers: 100 s of cut outlasts the first minute of asking (which
    # starts ~30 s into the cut).  At confirm the destination runs the VM;
    # a source that gave up after that minute kept its paused copy for
    # good (two copies; this cell FAILED before the fix).
    "link-100s@confirm",
]


@pytest.mark.parametrize("cell", QUICK)
def test_cell(cell, guest):
    r = matrix.run_one(cell, guest)
    assert r["outcome"] == "PASS", r
