"""Time the Section 5 multiple-choice evaluation (issue 11) on the shared WikiDoc data, cpu-profile sizes.

Builds the test split exactly as the notebook's `cpu` profile does (clean, draw MAX_EXAMPLES with SEED, split), makes
the held-out items (K distractors each) and scores them with the base model and a LoRA-wrapped model, as the notebook's
`run_mc_task` does. The adapter here is freshly initialised (untrained), so both accuracies coincide: this measures the
time, not the fine-tune's effect (the quality benchmark measures that).
Usage: .venv/bin/python bench/knowledge_timing.py [--data PATH] [--items 60] [--k 3] [--threads N]
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import medllm  # noqa: E402


def main():
    """Parse arguments, build the items, score them with both models and print the timings as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" /
                                              "medical_meadow_wikidoc_patient_information.json"))
    parser.add_argument("--items", type=int, default=60)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        __import__("torch").set_num_threads(args.threads)
    lib = medllm.namespace()
    from peft import LoraConfig, get_peft_model

    settings = lib.PROFILES["cpu"]
    clean, _ = lib.clean_pairs(lib.map_columns(lib.read_table(args.data)))
    test = lib.split_frame(lib.draw_subset(clean, settings.max_examples, 42), 42)["test"].head(args.items)
    model, tokenizer = lib.load_model_and_tokenizer(lib.embedded_model_dir(), "cpu", "float32")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    items = lib.discrimination_items(test, args.k, 42)
    n_tokens = sum(n for item in items for _, n in lib.encode_options(tokenizer, item))
    print("load before:", os.getloadavg(), flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    record, rows = lib.run_mc_task(model, tokenizer, {"name": "held-out answers", "split": "test", "licence": None,
                                                      "kind": "heldout"}, items, settings.eval_batch_size, 42)
    result = {"items": len(items), "candidates": args.k + 1, "answer_tokens_scored_per_model": n_tokens,
              "batch_size": settings.eval_batch_size, "wall_seconds": round(time.perf_counter() - wall, 1),
              "cpu_seconds": round(time.process_time() - cpu, 1), "record_seconds": record["seconds"],
              "base_accuracy": record["base_accuracy"], "fine_tuned_accuracy": record["fine_tuned_accuracy"],
              "chance": record["chance"], "torch_threads": __import__("torch").get_num_threads(),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    print("load after:", os.getloadavg(), flush=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
