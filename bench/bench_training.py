"""Training-speed benchmark: the old project's reference LoRA recipe vs. the notebook's recipe ("ours").

Both recipes train the same LoRA adapter (r=8, alpha=16, dropout 0.05, q_proj+v_proj, same learning rate)
on the SAME examples of the same model for the same number of epochs; only the recipe differs.

  ref        the replaced project: "### Instruction/### Input/### Response" text, every example padded to
             512 tokens, labels = input_ids on every token (loss on prompt and padding), batch 2 x grad-accum 4,
             gradient checkpointing on, plain transformers Trainer + default_data_collator.
             fp32 on a CPU; fp16 autocast on a GPU (the original's fp16=True).
  ours       the notebook's MedSFTTrainer (TRL's SFTTrainer with the LM head and loss only on answer positions)
             with the notebook's sft_config(): chat-template prompt/completion records, packed
             best-fit-decreasing padding-free rows, answer-only loss, no gradient checkpointing.
             Same precision as ref (fp32 on a CPU, fp16 autocast on a GPU).
  ours-trl   ours with TRL's own SFTTrainer.compute_loss (its fused LM head, which projects every position
             where TRL's Triton kernel is not used, as on a CPU or a T4): the notebook before issue 12.
  ours-bf16  ours with bf16 autocast: on a CPU only where cpu_supports_bf16() (AMX / AVX-512 BF16), on a
             GPU only where torch.cuda.is_bf16_supported(); otherwise reported as skipped with the reason.
  ours-gc    ours + gradient checkpointing (optional; isolates the recompute cost).
  ours-compile  ours with the Trainer's torch_compile=True (inductor); its time includes compilation.

Every recipe runs in its own subprocess (the script re-invokes itself with --worker RECIPE), so peak memory
(process peak RSS on a CPU, torch.cuda.max_memory_allocated on CUDA) is per recipe. Train time is measured
with time.perf_counter() around trainer.train() only (no model load, no tokenization); the process's CPU
time (time.process_time) over the same span is reported too: with --threads 1 it is far less sensitive to
other jobs sharing the cores than wall time.

Token counts come from a forward pre-hook on the trained model, i.e. from the batches the model actually
computed: computed tokens (incl. padding), real tokens (non-padding), loss tokens (labels
!= -100). "content tokens" are the question+answer tokens of the processed examples without any template:
the same number for both recipes, so content tokens/s compares the recipes on one denominator.

Example:  python bench/bench_training.py --examples 48 --threads 1 --ref-max-steps 3 \
              --recipes ref,ours,ours-bf16,ours-gc --out bench/results/sample_48.json
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / "data" / "medical_flashcards_sample.json"
RECIPES = ("ref", "ours", "ours-trl", "ours-bf16", "ours-gc", "ours-compile")
DEFAULT_RECIPES = "ref,ours,ours-bf16"
REF_MAX_LENGTH = 512
REF_BATCH, REF_ACCUM = 2, 4
LORA = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
DEFAULT_INSTRUCTION = "Answer this question truthfully"


# ----------------------------------------------------------------------------------------------- helpers
def load_notebook_lib():
    """The medllm package (the code the notebook embeds) as one namespace."""
    sys.path.insert(0, str(ROOT))
    import medllm

    return medllm.namespace()


class TokenCounter:
    """Count the tokens of every batch the model really runs forward on (a forward pre-hook on the top model).

    A hook rather than a collator wrapper: the data loader prefetches a batch ahead, so a collator would also
    count a batch that a --max-steps cap never trains on. Checkpointed layers recompute inside the model and
    are not counted again.
    """

    def __init__(self, model):
        self.computed = self.real = self.loss = self.batches = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        if not module.training:
            return None
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.batches += 1
        self.computed += int(ids.numel())
        mask = kwargs.get("attention_mask")
        self.real += int(mask.sum()) if mask is not None else int(ids.numel())
        labels, keep = kwargs.get("labels"), kwargs.get("logits_to_keep")
        if labels is not None:
            # the model shifts labels by one; count the positions that really enter the loss
            self.loss += int((labels[..., 1:] != -100).sum())
        elif getattr(keep, "dtype", None) is not None and str(keep.dtype) == "torch.bool":
            self.loss += int(keep.sum())  # MedSFTTrainer passes the answer positions instead of the labels
        return None


def checkpointed_layers(model):
    """How many modules really have activation (gradient) checkpointing switched on."""
    return sum(1 for m in model.modules() if getattr(m, "gradient_checkpointing", False) is True)


def select_examples(lib, data_path, n_examples, seed):
    """The cleaned question/answer/instruction frame of the N examples every recipe trains on."""
    raw = lib.read_table(data_path)
    pairs = lib.map_columns(raw)
    instruction = raw["instruction"] if "instruction" in raw.columns else DEFAULT_INSTRUCTION
    pairs["instruction"] = instruction
    clean, _ = lib.clean_pairs(pairs)
    clean["instruction"] = clean["instruction"].map(lambda v: v if isinstance(v, str) and v.strip() else
                                                    DEFAULT_INSTRUCTION)
    return lib.draw_subset(clean, n_examples, seed), len(raw), len(clean)


def reference_text(instruction, question, answer):
    """The replaced project's Alpaca-style training text."""
    return f"### Instruction:\n{instruction}\n\n### Input:\n{question}\n\n### Response:\n{answer}"


def device_info():
    """(device, precision of the equal-precision variants, bf16 available, reason if not)."""
    import torch

    if torch.cuda.is_available():
        bf16 = torch.cuda.is_bf16_supported()
        reason = "" if bf16 else f"{torch.cuda.get_device_name(0)} has no bf16 support"
        return "cuda", "fp16", bf16, reason
    return "cpu", "fp32", None, ""


# ----------------------------------------------------------------------------------------------- worker
def train_reference(lib, model, tokenizer, frame, args, device, precision, out_dir):
    """Build the reference recipe's Trainer; return (trainer, tokenization stats)."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments, default_data_collator

    texts = [reference_text(i, q, a) for i, q, a in zip(frame["instruction"], frame["question"], frame["answer"])]
    full_lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=REF_MAX_LENGTH)
    enc["labels"] = [list(ids) for ids in enc["input_ids"]]  # loss on EVERY token, padding and prompt included
    dataset = Dataset.from_dict(dict(enc)).with_format("torch")
    # what prepare_model_for_kbit_training did in the original: gradient checkpointing + input grads
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    targs = TrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=REF_BATCH, gradient_accumulation_steps=REF_ACCUM,
        learning_rate=args.learning_rate, num_train_epochs=args.epochs, max_steps=args.max_steps or -1,
        fp16=precision == "fp16", bf16=False, logging_steps=1, save_strategy="no", eval_strategy="no",
        report_to="none", seed=args.seed, data_seed=args.seed, disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=targs, train_dataset=dataset, data_collator=default_data_collator)
    real = sum(sum(mask) for mask in enc["attention_mask"])
    stats = {"truncated_examples": sum(n > REF_MAX_LENGTH for n in full_lengths), "max_length": REF_MAX_LENGTH,
             "rows": len(dataset), "epoch_computed_tokens": REF_MAX_LENGTH * len(dataset), "epoch_real_tokens": real}
    return trainer, stats


def train_ours(lib, model, tokenizer, frame, args, device, precision, gradient_checkpointing, out_dir,
               trainer_class=None, compile_model=False):
    """Build our recipe's trainer (the notebook's MedSFTTrainer) from its sft_config(); return (trainer, stats)."""
    from datasets import Dataset

    params = {**lib.PARAM_DEFAULTS, "PROFILE": args.profile, "SEED": args.seed}
    settings = lib.build_run_settings(params, lib.detect_device())
    settings.update(bf16=precision == "bf16", fp16=precision == "fp16")
    config = lib.sft_config(settings, out_dir, args.learning_rate, max_steps=args.max_steps or -1,
                            epochs=args.epochs, logging_steps=1)
    if gradient_checkpointing:
        # transformers 5 renamed the flag; `gradient_checkpointing` is a mirror read only at construction
        config.activation_checkpointing = config.gradient_checkpointing = True
    if compile_model:  # set after construction, so the backend too (post-init would have filled it in)
        config.torch_compile, config.torch_compile_backend = True, "inductor"
    full_lengths = [len(lib.encode_for_loss(tokenizer, q, a)["input_ids"])
                    for q, a in zip(frame["question"], frame["answer"])]
    dataset = Dataset.from_list(lib.to_prompt_completion(frame))
    trainer_class = trainer_class or lib.MedSFTTrainer
    trainer = trainer_class(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    packed = trainer.train_dataset
    tokens = sum(len(ids) for ids in packed["input_ids"])  # padding-free rows, batch 1: computed = real
    stats = {"max_length": settings["max_length"], "rows": len(packed), "grad_accum": settings["grad_accum"],
             "profile": settings["profile"], "epoch_computed_tokens": tokens, "epoch_real_tokens": tokens,
             "truncated_examples": sum(n > settings["max_length"] for n in full_lengths),
             "untruncated_tokens": sum(full_lengths)}
    return trainer, stats


def run_worker(args):
    """Train one recipe and print/write its measurements as JSON."""
    import torch
    from peft import get_peft_model
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    device, equal_precision, bf16_ok, bf16_reason = device_info()
    lib = load_notebook_lib()
    recipe = args.worker
    precision = equal_precision
    if recipe == "ours-bf16":
        if device == "cpu":
            bf16_ok = lib.cpu_supports_bf16()
            bf16_reason = "" if bf16_ok else "this CPU has no native bf16 (no avx512_bf16 / amx_bf16 in /proc/cpuinfo)"
        if not bf16_ok:
            return {"recipe": recipe, "skipped": True, "reason": bf16_reason}
        precision = "bf16"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    frame, n_raw, n_clean = select_examples(lib, args.data, args.examples, args.seed)
    model_path = args.model or str(lib.embedded_model_dir())
    model, tokenizer = lib.load_model_and_tokenizer(model_path, device, "float32")
    content_per_example = [len(q) + len(a) for q, a in zip(
        tokenizer(list(frame["question"]), add_special_tokens=False)["input_ids"],
        tokenizer(list(frame["answer"]), add_special_tokens=False)["input_ids"])]
    set_seed(args.seed)
    model = get_peft_model(model, lib.lora_config(LORA))
    with tempfile.TemporaryDirectory() as out_dir:
        if recipe == "ref":
            trainer, stats = train_reference(lib, model, tokenizer, frame, args, device, precision, out_dir)
        else:
            trainer, stats = train_ours(lib, model, tokenizer, frame, args, device, precision,
                                        recipe == "ours-gc", out_dir,
                                        lib.SFTTrainer if recipe == "ours-trl" else lib.MedSFTTrainer,
                                        compile_model=recipe == "ours-compile")
        counter = TokenCounter(trainer.model)
        load_start = os.getloadavg()[0]
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer.train()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        load_end = os.getloadavg()[0]
    epochs_done = float(trainer.state.epoch or 0.0)
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    content_tokens = sum(content_per_example) * epochs_done  # same examples → same number for every recipe
    result = {
        "recipe": recipe, "skipped": False, "device": device, "precision": precision,
        "gradient_checkpointing": checkpointed_layers(trainer.model) > 0,
        "checkpointed_modules": checkpointed_layers(trainer.model),
        "examples": len(frame), "raw_rows": n_raw, "clean_rows": n_clean,
        "epochs_done": epochs_done, "optimizer_steps": trainer.state.global_step, "batches": counter.batches,
        "train_seconds": seconds, "seconds_per_epoch": seconds / epochs_done if epochs_done else math.nan,
        "train_cpu_seconds": cpu_seconds,
        "cpu_seconds_per_epoch": cpu_seconds / epochs_done if epochs_done else math.nan,
        "computed_tokens": counter.computed, "real_tokens": counter.real, "loss_tokens": counter.loss,
        "content_tokens": content_tokens,
        "real_fraction": counter.real / counter.computed if counter.computed else math.nan,
        "computed_tokens_per_s": counter.computed / seconds, "real_tokens_per_s": counter.real / seconds,
        "content_tokens_per_s": content_tokens / seconds, "examples_per_s": len(frame) * epochs_done / seconds,
        "first_loss": logs[0]["loss"] if logs else None, "last_loss": logs[-1]["loss"] if logs else None,
        "peak_memory_mb": lib.peak_memory_mb(device), "torch_threads": torch.get_num_threads(),
        "loadavg_1min_start": load_start, "loadavg_1min_end": load_end, **stats,
        "log_history": trainer.state.log_history,  # per-step train_runtime: compile time vs steady steps
    }
    return result


# ----------------------------------------------------------------------------------------------- driver
def run_recipe_subprocess(recipe, args):
    """Run one recipe in a fresh Python process; return its result dict."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        result_path = handle.name
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", recipe, "--worker-out", result_path,
               "--data", str(args.data), "--examples", str(args.examples), "--epochs", str(args.epochs),
               "--learning-rate", str(args.learning_rate), "--seed", str(args.seed), "--profile", args.profile,
               "--threads", str(args.threads)]
    max_steps = args.ref_max_steps if recipe == "ref" and args.ref_max_steps else args.max_steps
    if max_steps:
        command += ["--max-steps", str(max_steps)]
    if args.model:
        command += ["--model", str(args.model)]
    print(f"--- {recipe}: running in a subprocess ...", flush=True)
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            return {"recipe": recipe, "skipped": True, "failed": True,
                    "reason": f"worker failed (exit {proc.returncode}):\n{tail}"}
        return json.loads(Path(result_path).read_text())
    finally:
        os.unlink(result_path)


def fmt(value, digits=1):
    """Format a number for the table."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def print_report(results):
    """Print one line per recipe and the speed ratios against the reference."""
    ref = next((r for r in results if r["recipe"] == "ref" and not r["skipped"]), None)
    header = ("recipe", "precision", "ckpt", "s/epoch", "CPU s/epoch", "real tok/s", "computed tok/s", "content tok/s",
              "real frac", "computed tok", "real tok", "loss tok", "peak MB", "loss first→last", "ref s / s",
              "ref CPU s / CPU s")
    rows, unit = [], "" if ref is None else "x"
    for r in results:
        if r["skipped"]:
            print(f"{r['recipe']}: SKIPPED — {r['reason']}")
            continue
        ratio = ref["seconds_per_epoch"] / r["seconds_per_epoch"] if ref else math.nan
        cpu_ratio = ref["cpu_seconds_per_epoch"] / r["cpu_seconds_per_epoch"] if ref else math.nan
        rows.append((r["recipe"], r["precision"], "on" if r["gradient_checkpointing"] else "off",
                     fmt(r["seconds_per_epoch"]), fmt(r["cpu_seconds_per_epoch"]), fmt(r["real_tokens_per_s"]),
                     fmt(r["computed_tokens_per_s"]),
                     fmt(r["content_tokens_per_s"]), fmt(r["real_fraction"], 3), fmt(r["computed_tokens"]),
                     fmt(r["real_tokens"]), fmt(r["loss_tokens"]), fmt(r["peak_memory_mb"], 0),
                     f"{fmt(r['first_loss'], 3)}→{fmt(r['last_loss'], 3)}",
                     fmt(ratio, 2) + unit, fmt(cpu_ratio, 2) + unit))
    if not rows:
        return
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for r in results:
        if not r["skipped"]:
            keys = ("examples", "epochs_done", "optimizer_steps", "batches", "rows", "max_length", "grad_accum",
                    "train_seconds", "train_cpu_seconds", "epoch_computed_tokens", "epoch_real_tokens",
                    "truncated_examples", "untruncated_tokens", "checkpointed_modules", "torch_threads",
                    "loadavg_1min_start", "loadavg_1min_end")
            extra = ", ".join(f"{k}={round(r[k], 2) if isinstance(r[k], float) else r[k]}" for k in keys if k in r)
            print(f"  {r['recipe']}: {extra}")


LOSS_TOLERANCE = 0.02  # bf16 vs fp32: every logged training loss within 2 % of fp32's (fixed before measuring)


def loss_curve(result):
    """The logged training losses of one recipe, by optimizer step."""
    return {entry["step"]: entry["loss"] for entry in result.get("log_history", []) if "loss" in entry}


def compare_loss_curves(results, baseline="ours", other="ours-bf16", tolerance=LOSS_TOLERANCE):
    """Print how far `other`'s loss curve is from `baseline`'s at the same steps; return the verdict (None: n/a)."""
    found = {r["recipe"]: r for r in results if not r["skipped"]}
    if baseline not in found or other not in found:
        return None
    base, curve = loss_curve(found[baseline]), loss_curve(found[other])
    steps = sorted(set(base) & set(curve))
    if not steps:
        return None
    relative = [abs(curve[s] - base[s]) / abs(base[s]) for s in steps]
    worst = max(range(len(steps)), key=relative.__getitem__)
    verdict = max(relative) <= tolerance
    print(f"loss curve {other} vs {baseline} over {len(steps)} steps: mean |Δ| {sum(relative) / len(steps):.2%}, "
          f"max |Δ| {relative[worst]:.2%} at step {steps[worst]} ({curve[steps[worst]]:.4f} vs "
          f"{base[steps[worst]]:.4f}); tolerance {tolerance:.0%}: {'within' if verdict else 'OUTSIDE'}")
    return verdict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"Medical Meadow .json/.jsonl/.csv (default: the project sample {DEFAULT_DATA.name})")
    parser.add_argument("--examples", type=int, default=48, help="examples drawn (same for every recipe; default 48)")
    parser.add_argument("--epochs", type=float, default=1.0, help="training epochs (default 1)")
    parser.add_argument("--max-steps", type=int, default=0, help="cap optimizer steps (0 = no cap); s/epoch is "
                        "then extrapolated from the fraction of the epoch done")
    parser.add_argument("--ref-max-steps", type=int, default=0, help="cap optimizer steps of the reference recipe "
                        "only (0 = --max-steps); every reference batch has the same 2x512 shape, so its s/epoch "
                        "extrapolates exactly up to timing noise")
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the embedded SmolLM2-135M)")
    parser.add_argument("--learning-rate", type=float, default=2e-4, help="same for every recipe (default 2e-4)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", default="auto", help="notebook profile for ours' max_length/grad_accum "
                        "(auto = gpu on CUDA, cpu otherwise)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads per worker (0 = torch's default); "
                        "1 avoids OpenMP slowdowns when other jobs share the cores")
    parser.add_argument("--recipes", default=DEFAULT_RECIPES, help=f"comma list from {','.join(RECIPES)} "
                        f"(default {DEFAULT_RECIPES})")
    parser.add_argument("--out", type=Path, default=None, help="write all results to this JSON file")
    parser.add_argument("--worker", choices=RECIPES, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [r for r in args.recipes.split(",") if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {RECIPES}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        result = run_worker(args)
        args.worker_out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    if not args.data.is_file():
        print(f"Data file not found: {args.data} — nothing to benchmark (skipped).")
        return 0
    load = os.getloadavg()
    print(f"data={args.data} examples={args.examples} epochs={args.epochs} max_steps={args.max_steps or None} "
          f"ref_max_steps={args.ref_max_steps or None} "
          f"threads={args.threads or 'default'} "
          f"cpu={platform.processor() or platform.machine()} cores={os.cpu_count()} "
          f"loadavg_before={load[0]:.2f},{load[1]:.2f},{load[2]:.2f}", flush=True)
    results = []
    for recipe in args.recipes.split(","):
        result = run_recipe_subprocess(recipe, args)
        results.append(result)
        if result["skipped"]:
            print(f"{recipe}: SKIPPED — {result['reason']}", flush=True)
        else:
            print(f"{recipe}: {result['seconds_per_epoch']:.1f} s/epoch ({result['cpu_seconds_per_epoch']:.1f} CPU s), "
                  f"{result['real_tokens_per_s']:.0f} real tok/s, "
                  f"{result['computed_tokens_per_s']:.0f} computed tok/s, real fraction {result['real_fraction']:.3f}, "
                  f"peak {result['peak_memory_mb']:.0f} MB", flush=True)
    load_after = os.getloadavg()
    print(f"loadavg_after={load_after[0]:.2f},{load_after[1]:.2f},{load_after[2]:.2f}")
    print_report(results)
    compare_loss_curves(results)
    if args.out:
        record = {"argv": sys.argv, "data": str(args.data), "examples": args.examples, "epochs": args.epochs,
                  "max_steps": args.max_steps, "ref_max_steps": args.ref_max_steps, "threads": args.threads,
                  "loadavg_before": load, "loadavg_after": load_after,
                  "results": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return 1 if any(r.get("failed") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
