#!/usr/bin/env bash
# Set up, then lint, check the notebook is built from nb/ and output-free, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python tools/build_notebook.py --check
ruff check .
python -m pytest -q --durations=15 "$@"
