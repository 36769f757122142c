#!/usr/bin/env bash
# Set up textedit in ./.venv on a fresh machine (Python 3.10+). Idempotent.
# torch is pinned here (not in pyproject, which keeps a range) so pip takes the CPU build
# that this machine carries instead of pulling several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
