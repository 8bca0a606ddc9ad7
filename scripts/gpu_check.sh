#!/usr/bin/env bash
# GPU self-check under T4 conditions (fp16, the gpu profile's model and shapes, QLoRA included): 2 steps of
# every sweep configuration and of the final training, generation, perplexity and the UI build, with per-stage
# time, peak memory and ✓/✗, and one verdict line. Options: --dry-run (CPU, lists the stages), --random-init
# (no hub: a random model of TinyLlama's shape), --model ID, --precision, --no-t4-memory. Under 5 minutes on a T4.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=python3
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python
exec "$PYTHON" scripts/gpu_check.py "$@"
