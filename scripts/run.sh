#!/usr/bin/env bash
# Set up, then run the whole notebook headless with papermill (PROFILE=auto unless MEDLLM_PROFILE says otherwise).
# Writes RESULTS_DIR (default results/) and the executed notebook RESULTS_DIR/executed_notebook.ipynb.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
RESULTS=${MEDLLM_RESULTS_DIR:-results}
mkdir -p "$RESULTS"
SECONDS=0
papermill medical-llm-pipeline-standalone-colab.ipynb "$RESULTS/executed_notebook.ipynb" \
  -k python3 -p RESULTS_DIR "$RESULTS" -p PROFILE "${MEDLLM_PROFILE:-auto}" -p LAUNCH_UI "${MEDLLM_LAUNCH_UI:-True}" "$@"
echo "notebook finished in ${SECONDS}s; outputs in $RESULTS/"
