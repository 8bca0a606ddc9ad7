#!/usr/bin/env bash
# Colab runs Python 3.13, for which no torch installs here. Under Python 3.13 (pyenv's 3.13.0): compile every project
# .py file and every code cell of the notebook, then run the tests marked `notorch` (no torch, no lib cells).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
export PYENV_VERSION=${PYENV_VERSION:-3.13.0}
PY313=${PY313:-python3.13}
command -v "$PY313" >/dev/null || { echo "✗ no $PY313 on this machine (pyenv install 3.13.0, or set PY313)"; exit 1; }
VENV=.venv-py313
[ -x "$VENV/bin/python" ] || "$PY313" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q pytest nbformat jupytext packaging pandas
"$VENV/bin/python" - <<'PYTHON'
import subprocess, sys
import nbformat
files = [f for f in subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], capture_output=True, text=True, check=True).stdout.split()]
for name in files:
    compile(open(name, encoding="utf-8").read(), name, "exec")
cells = [c.source for c in nbformat.read("medical-llm-pipeline-standalone-colab.ipynb", as_version=4).cells
         if c.cell_type == "code"]
for index, source in enumerate(cells):
    compile(source, f"<notebook code cell {index}>", "exec")  # no IPython magics: every cell is plain Python
print(f"Python {sys.version.split()[0]}: {len(files)} .py files and {len(cells)} notebook code cells compile")
PYTHON
"$VENV/bin/python" -m pytest -q -m notorch -p no:cacheprovider "$@"
echo "Python 3.13 step: ${SECONDS} s"
