#!/usr/bin/env bash
# Set up, then lint, check the notebook is built from nb/ and output-free, and run the test suite.
# CI (.ci/run) also runs scripts/test_py313.sh and scripts/test_colab.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
python tools/build_notebook.py --check
python tools/colab_packages.py --check  # the Colab package lists still match ../shared/colab (skipped without it)
ruff check .
python -m pytest -q --durations=15 "$@"
