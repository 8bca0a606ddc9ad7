#!/usr/bin/env bash
# The committed reference run: the notebook in the `cpu` profile on the shared WikiDoc file (read from ../shared/data,
# never copied here), then published to results/reference-cpu-wikidoc/ by bench/publish_run.py — without model
# weights or tokenizer, and without the data's text columns (WikiDoc is CC BY-SA; REPORT.md quotes three examples
# with their attribution).
# Usage: bash bench/reference_run.sh [RUN_DIR [papermill options...]]   (default RUN_DIR /tmp/medllm-reference)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${MEDLLM_QUALITY_DATA:-../shared/data/medical_meadow_wikidoc_patient_information.json}
RUN=${1:-/tmp/medllm-reference}
[ -f "$DATA" ] || { echo "reference data not found: $DATA" >&2; exit 2; }
. .venv/bin/activate
rm -rf "$RUN" && mkdir -p "$RUN"
SECONDS=0
papermill medical-llm-pipeline-standalone-colab.ipynb "$RUN/executed_notebook.ipynb" -k python3 --cwd . \
  -p PROFILE cpu -p DATASET "$(realpath "$DATA")" -p RESULTS_DIR "$RUN" "${@:2}"
echo "notebook wall time: ${SECONDS}s (uptime: $(uptime))"
python bench/publish_run.py "$RUN" results/reference-cpu-wikidoc
