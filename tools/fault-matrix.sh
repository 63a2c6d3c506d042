#!/bin/sh
# fault-matrix: runs the fault matrix of SAFETY.md (tests/matrix/matrix.py:
# every fault at every migration phase, hosts in network namespaces) and
# writes its table into docs/reliability.md.  Needs root and a build in
# ${TERN_BUILD_DIR:-build}.  Arguments go to matrix.py, e.g.
#   tools/fault-matrix.sh --jobs 2
#   tools/fault-matrix.sh --cells src-kill@prepare,link-5s@confirm --docs ''
set -eu
cd "$(dirname "$0")/.."
exec "${PYTHON:-/usr/bin/python3}" tests/matrix/matrix.py --docs docs/reliability.md "$@"
