#!/usr/bin/env bash
# The notebook in Colab's package mix (.venv-colab, see scripts/colab_env.sh), on its Colab path, as a user runs it:
#   1. reset .venv-colab to Colab's preinstalled versions (torchao 0.10.0, datasets 4.0.0, pyarrow 18.1.0, no trl);
#   2. start its kernel the way Colab's does, with numpy and pandas (and so pyarrow) already imported, and Run all in
#      the smoke profile with MEDLLM_INSTALL=1: the notebook's own install step runs (Colab's path without Drive,
#      secrets or share links) and, having replaced pyarrow under a loaded pandas, stops and asks for a restart;
#   3. Run all again in a fresh kernel: the install step finds nothing to change and the whole notebook runs.
# Passes when run 1 stopped only for the restart (or ran through), run 2 ran every cell, the install step said what
# it changed, and the checklist passed. Options: --keep (skip step 1's reset). Outputs in ${COLAB_OUT:-/tmp/medllm-colab}.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
[ "${1:-}" = "--keep" ] || bash scripts/colab_env.sh
VENV=${COLAB_VENV:-.venv-colab}
OUT=${COLAB_OUT:-/tmp/medllm-colab}
rm -rf "$OUT" && mkdir -p "$OUT/ipython/profile_default/startup"
# What Colab's kernel has imported before the first cell: google.colab imports numpy and PIL (google/colab/_reprs.py);
# Colab's team says pandas too ("we import pandas at startup", NVIDIA/cudf#10187); pandas imports pyarrow.
cat > "$OUT/ipython/profile_default/startup/00-colab-preimports.py" <<'PYTHON'
import numpy, PIL, pandas  # noqa: E401,F401
PYTHON
[ -x .venv/bin/python ] || bash scripts/setup.sh >/dev/null  # papermill drives the kernel from the usual .venv
export JUPYTER_PATH="$PWD/$VENV/share/jupyter" IPYTHONDIR="$OUT/ipython" MEDLLM_INSTALL=1 HF_HUB_OFFLINE=1 \
  MEDLLM_PROFILE=smoke MEDLLM_RESULTS_DIR="$OUT/results" MEDLLM_EXPORT=merged,gguf
run_all() {  # $1: name of the executed notebook
  .venv/bin/python -m papermill medical-llm-pipeline-standalone-colab.ipynb "$OUT/$1.ipynb" -k medllm-colab \
    --cwd "$PWD" --log-output --no-progress-bar >"$OUT/$1.log" 2>&1
}
outputs() {  # the text every executed cell printed, errors included
  .venv/bin/python - "$OUT/$1.ipynb" <<'PYTHON'
import sys, nbformat
for cell in nbformat.read(sys.argv[1], as_version=4).cells:
    for out in cell.get("outputs", []):
        print(out.get("text", "") or "\n".join(out.get("traceback", [])) or "", end="")
PYTHON
}
if run_all run1; then
  echo "run 1: Run all went through without a restart ($SECONDS s)"
else
  outputs run1 | grep -q "Runtime → Restart session, then Runtime → Run all" \
    || { echo "✗ run 1 failed for another reason:"; outputs run1 | tail -40; exit 1; }
  echo "run 1 ($SECONDS s): stopped for the restart, as on Colab: $(outputs run1 | grep -m1 -o 'already imported ([^)]*→[^)]*)')"
fi
outputs run1 | grep -m1 "^Install step:" || { echo "✗ run 1: the install step printed no summary line"; exit 1; }
START=$SECONDS
run_all run2 || { echo "✗ run 2 failed:"; outputs run2 | tail -60; exit 1; }
outputs run2 | grep -m1 "^Install step: nothing to change" || { echo "✗ run 2: the install step changed something"; exit 1; }
.venv/bin/python - "$OUT/results" "$VENV" <<'PYTHON'
import json, sys
from pathlib import Path
results, venv = Path(sys.argv[1]), sys.argv[2]
checklist = json.loads((results / "submission_checklist.json").read_text())
config = json.loads((results / "run_config.json").read_text())
failed = [c for s in checklist["sections"] for c in s["checks"] if not c["ok"]]
print(f"run 2: profile {config['profile']}, {config['device']} {config['precision']}, versions {config['versions']}")
assert not failed, f"checklist items failed: {failed}"
export = json.loads((results / "metrics" / "export.json").read_text())
assert "Q8_0" in export["gguf"]["tensor_types"] and (results / "models" / "merged" / "config.json").exists(), export
print(f"export: merged model and {export['gguf']['file']} ({export['gguf']['bytes']:,} bytes) in Colab's mix")
print(f"checklist: {sum(len(s['checks']) for s in checklist['sections'])} evidence checks passed")
PYTHON
echo "✓ Colab mix: the notebook ran end to end after its own install step (run 2: $((SECONDS - START)) s; all: $SECONDS s)"
