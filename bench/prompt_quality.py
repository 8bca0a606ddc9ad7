"""Does a shorter system prompt hold quality? A paired comparison on the shared WikiDoc file (issue 19, item 6).

Both prompts get the same examples, the same LoRA configuration, the same recipe and the same seed; only the system
prompt differs. The `cpu` profile's data pipeline (clean, draw MAX_EXAMPLES with SEED, split) runs once, with today's
prompt, so the splits are identical. For each prompt:

1. a fresh LoRA adapter of the configuration the reference run selected (r16, all linear layers, lr 1e-3) is trained
   with the notebook's own recipe (`sft_config`, `MedSFTTrainer`: packed rows, answer-only loss) for one epoch on the
   first --train-examples training pairs, timed (the speed gain);
2. on the validation split: the answer-only loss of all pairs (token-weighted), and greedy answers to the first
   --gen-examples questions (max_new_tokens from the data, as in the notebook), scored by ROUGE-L and the loop rate.

The rule, fixed before running: the short prompt is adopted only if quality holds on both measures —
validation loss: short − today ≤ +0.02 nats and the lower end of its 95 % paired bootstrap CI ≤ 0 (not measurably
worse); ROUGE-L: the upper end of the 95 % paired bootstrap CI of short − today ≥ 0 (not measurably worse).

Usage:  flock /work/heavy.lock python bench/prompt_quality.py --out bench/results/prompt_quality.json
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import medllm  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "medical_meadow_wikidoc_patient_information.json"
CONFIG = {"config": "r16-all-lr1e-3", "learning_rate": 1e-3, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
          "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
          "quantization": "none"}
SHORT = "Answer the medical question accurately."


def per_example_nll(lib, model, tokenizer, frame, batch_size):
    """Summed answer-token NLL and answer-token count of every example (for a paired bootstrap), in frame order."""
    import numpy as np

    rows = [lib.answer_nll(model, tokenizer, frame.iloc[[i]], batch_size) for i in range(len(frame))]
    return np.array(rows, dtype=float)


def train_timed(lib, model, tokenizer, prompt, frame, settings, workdir):
    """A fresh adapter trained one epoch on frame with `prompt`: (peft model, trainer, train output, timing)."""
    from datasets import Dataset

    lib.SYSTEM_PROMPT = prompt
    train_ds = Dataset.from_list(lib.to_prompt_completion(frame))
    lib.set_seed(settings["seed"])
    peft = lib.get_peft_model(lib.remove_lora_layers(model), lib.lora_config(CONFIG))
    trainer_args = lib.sft_config(settings, workdir, CONFIG["learning_rate"], epochs=1.0, logging_steps=5)
    trainer = lib.MedSFTTrainer(model=peft, args=trainer_args, train_dataset=train_ds, processing_class=tokenizer)
    load_before = os.getloadavg()
    start, cpu = time.perf_counter(), time.process_time()
    result = trainer.train()
    timing = {"train_seconds": round(time.perf_counter() - start, 1), "train_cpu_seconds":
              round(time.process_time() - cpu, 1), "trained_tokens": int(trainer.state.num_input_tokens_seen),
              "optimizer_steps": trainer.state.global_step, "load_before": load_before, "load_after": os.getloadavg()}
    return peft, trainer, result, timing


def time_only(lib, model, tokenizer, splits, settings, args):
    """Training time of both prompts on the same examples, alternating, `--repeats` times each: the speed gain."""
    rows = []
    for repeat in range(args.repeats):
        for name, prompt in (("today", lib.SYSTEM_PROMPT), ("short", SHORT)):
            peft, _, _, timing = train_timed(lib, model, tokenizer, prompt, splits["train"].head(args.time_examples),
                                             settings, Path("/tmp") / f"prompt_timing_{name}")
            rows.append({"prompt": name, "repeat": repeat, **timing})
            print(rows[-1], flush=True)
            lib.remove_lora_layers(peft.base_model.model)
            lib.release_memory("cpu", peft)
    return rows


def run_prompt(lib, model, tokenizer, prompt, splits, settings, args, workdir):
    """Train a fresh adapter with `prompt` and measure it: seconds, tokens, validation loss, ROUGE-L, loops."""
    import numpy as np

    lib.SYSTEM_PROMPT = prompt
    base_nll = per_example_nll(lib, model, tokenizer, splits["val"], settings["eval_batch_size"])
    peft, _, result, timing = train_timed(lib, model, tokenizer, prompt, splits["train"].head(args.train_examples),
                                          settings, workdir)
    tuned_nll = per_example_nll(lib, peft, tokenizer, splits["val"], settings["eval_batch_size"])
    questions = splits["val"].head(args.gen_examples)
    gen_start = time.perf_counter()
    answers, hits = lib.generate_with_limits(peft, tokenizer, questions["question"], settings["max_new_tokens"],
                                             settings["gen_batch_size"])
    record = {"prompt": prompt, "train_examples": min(args.train_examples, len(splits["train"])), **timing,
              "train_loss": result.training_loss,
              "val_loss_base": float(base_nll[:, 0].sum() / base_nll[:, 1].sum()),
              "val_loss": float(tuned_nll[:, 0].sum() / tuned_nll[:, 1].sum()),
              "generation_seconds": round(time.perf_counter() - gen_start, 1),
              "rougeL": lib.rouge_f_scores(answers, questions["answer"])["rougeL"],
              "loops": [bool(lib.loops(a)) for a in answers], "hit_limit": [bool(h) for h in hits],
              "answers": answers}
    lib.remove_lora_layers(peft.base_model.model)
    lib.release_memory("cpu", peft)
    return record, tuned_nll, np.array(record["rougeL"])


def main(argv=None):
    """Run both prompts, apply the stated rule, print and save the comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--train-examples", type=int, default=500)
    parser.add_argument("--gen-examples", type=int, default=48)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--time-only", action="store_true", help="only time the training of both prompts")
    parser.add_argument("--time-examples", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"Data file not found: {args.data} (skipped)")
        return 0
    import numpy as np
    import pandas as pd

    lib = medllm.namespace()
    device = lib.detect_device("fp32")
    settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "cpu"}, device), "progress": False}
    model, tokenizer = lib.load_model_and_tokenizer(str(lib.embedded_model_dir()), "cpu", "float32")
    today = lib.SYSTEM_PROMPT
    pairs = lib.map_columns(lib.read_table(args.data))
    splits, _, _ = lib.data_pipeline(pairs, tokenizer, settings)  # once, with today's prompt: identical splits
    lengths = lib.length_table({"train": splits["train"]}, tokenizer)
    settings["max_new_tokens"] = lib.max_new_tokens_from_data(lengths.query("field == 'answer'")["tokens"],
                                                              settings["max_new_tokens_cap"])
    print(f"splits {[len(f) for f in splits.values()]}, max_new_tokens {settings['max_new_tokens']}", flush=True)
    if args.time_only:
        rows = time_only(lib, model, tokenizer, splits, settings, args)
        lib.SYSTEM_PROMPT = today
        if args.out:
            args.out.write_text(json.dumps({"argv": sys.argv, "timings": rows}, indent=2) + "\n")
        return 0
    results, nll, rouge = {}, {}, {}
    for name, prompt in (("today", today), ("short", SHORT)):
        results[name], nll[name], rouge[name] = run_prompt(lib, model, tokenizer, prompt, splits, settings, args,
                                                           Path("/tmp") / f"prompt_quality_{name}")
        print(name, {k: v for k, v in results[name].items() if k not in {"rougeL", "loops", "hit_limit", "answers"}},
              flush=True)
    lib.SYSTEM_PROMPT = today
    token_mean = lambda rows: rows[:, 0].sum() / rows[:, 1].sum()  # noqa: E731
    loss_ci = lib.paired_bootstrap_ci(nll["today"], nll["short"], token_mean, 1000, 0)
    rouge_ci = lib.paired_bootstrap_ci(rouge["today"], rouge["short"], np.mean, 1000, 0)
    holds = {"val_loss": loss_ci["diff"] <= 0.02 and loss_ci["low"] <= 0, "rougeL": rouge_ci["high"] >= 0}
    summary = {"rule": "adopt the short prompt only if val-loss diff <= +0.02 with CI low <= 0, and ROUGE-L diff CI "
                       "high >= 0", "val_loss_diff": loss_ci, "rougeL_diff": rouge_ci, "holds": holds,
               "adopt": all(holds.values()),
               "speed_gain": results["today"]["train_seconds"] / results["short"]["train_seconds"],
               "token_ratio": results["today"]["trained_tokens"] / results["short"]["trained_tokens"]}
    table = pd.DataFrame([{"prompt": name, "val_loss_base": r["val_loss_base"], "val_loss": r["val_loss"],
                           "rougeL": float(np.mean(r["rougeL"])), "loop_rate": float(np.mean(r["loops"])),
                           "hit_limit": float(np.mean(r["hit_limit"])), "trained_tokens": r["trained_tokens"],
                           "steps": r["optimizer_steps"], "train_s": r["train_seconds"],
                           "train_cpu_s": r["train_cpu_seconds"]} for name, r in results.items()])
    print(table.to_string(index=False))
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"argv": sys.argv, "settings": {k: settings[k] for k in ("max_new_tokens", "seed", "max_length",
                                                                          "grad_accum", "gen_batch_size")},
                   "results": {k: {kk: vv for kk, vv in v.items() if kk != "answers"} for k, v in results.items()},
                   "summary": summary}
        args.out.write_text(json.dumps(payload, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
