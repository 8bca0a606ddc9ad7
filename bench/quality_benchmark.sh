#!/usr/bin/env bash
# Quality benchmark: the `cpu` profile on the real WikiDoc patient-information data (read from ../shared/data,
# never copied here), ~1,000 training examples, one epoch; prints base vs fine-tuned scores with 95% CIs.
# Usage: bash bench/quality_benchmark.sh [RESULTS_DIR [papermill options...]]   (default /tmp/medllm-quality)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${MEDLLM_QUALITY_DATA:-../shared/data/medical_meadow_wikidoc_patient_information.json}
OUT_DIR=${1:-/tmp/medllm-quality}
[ -f "$DATA" ] || { echo "quality data not found: $DATA" >&2; exit 2; }
. .venv/bin/activate
mkdir -p "$OUT_DIR"
SECONDS=0
papermill medical-llm-pipeline-standalone-colab.ipynb "$OUT_DIR/executed_notebook.ipynb" -k python3 --cwd . \
  -p PROFILE cpu -p DATASET "$(realpath "$DATA")" -p RESULTS_DIR "$OUT_DIR" -p LAUNCH_UI False "${@:2}"
echo "notebook wall time: ${SECONDS}s"
python - "$OUT_DIR" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
scores = json.loads((out / "metrics" / "evaluation_scores.json").read_text())
sweep = (out / "experiments" / "experiment_tracking.csv").read_text()
print(f"n_examples={scores['n_examples']} (generated), perplexity over {scores.get('n_perplexity_examples')} test examples")
for key in ("bleu", "rouge1", "rouge2", "rougeL", "perplexity", "mean_words"):
    base, tuned = scores["base"][key], scores["fine_tuned"][key]
    print(f"{key:>10}: base {base:.4f}  fine-tuned {tuned:.4f}  relative {tuned / base - 1:+.1%}")
for key, ci in scores["ci95"].items():
    print(f"{key:>10}: diff {ci['diff']:+.4f}  95% CI [{ci['low']:+.4f}, {ci['high']:+.4f}]")
print("win/tie/loss:", scores["win_rate"])
knowledge = out / "metrics" / "knowledge_eval.json"
for task in (json.loads(knowledge.read_text())["tasks"] if knowledge.exists() else []):
    if task["status"] != "ok":
        print(f"multiple choice, {task['name']}: skipped ({task['reason']})")
        continue
    ci = task["ci95"]
    print(f"multiple choice, {task['name']} (n={task['n']}, K={task['k']}, chance {task['chance']:.3f}): base "
          f"{task['base_accuracy']:.3f}  fine-tuned {task['fine_tuned_accuracy']:.3f}  diff {ci['diff']:+.3f}  "
          f"95% CI [{ci['low']:+.3f}, {ci['high']:+.3f}]  {task['seconds']:.0f} s")
print(sweep)
PY
