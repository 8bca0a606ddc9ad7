"""Training: answer-only loss, memory-aware steps, the final training and its launcher."""

import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from peft import get_peft_model, prepare_model_for_kbit_training
from transformers import TrainerCallback, set_seed
from trl import SFTTrainer

from .checkpoints import (
    CHECKPOINT_MINUTES,
    CHECKPOINTS_KEPT,
    CheckpointEvery,
    CheckpointManifest,
    find_resume_checkpoint,
)
from .data import encode_for_loss
from .device import (
    memory_in_use_mb,
    peak_memory_mb,
    peak_reserved_mb,
    release_memory,
    reset_peak_memory,
    upcast_trainable_params,
    world_size,
)
from .library_internals import log_trl_metrics, trl_uses_triton
from .model import load_model_and_tokenizer
from .persist import announce, update_run_config
from .recipe import RECIPE_FIELDS, data_digest, lora_config, remove_lora_layers, run_fingerprint, sft_config, sweep_args


# Scoring a configuration: the token-weighted negative log-likelihood of the validation answers (prompt
# tokens excluded), in batches that halve and retry on a CUDA out-of-memory error.
def in_halving_batches(items, batch_size, run_batch):
    """run_batch over consecutive slices of items; on CUDA out-of-memory halve the batch and retry (raise at 1)."""
    results, start = [], 0
    while start < len(items):
        batch = items[start:start + batch_size]
        try:
            results.append(run_batch(batch))
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            announce(f"CUDA out of memory: retrying with batch size {batch_size}.")
            continue
        start += len(batch)
    return results


def batch_nll(model, tokenizer, batch):
    """Summed answer-token negative log-likelihood of one batch of encoded examples, and its answer-token count."""
    device = next(model.parameters()).device
    width = max(len(e["input_ids"]) for e in batch)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([e["input_ids"] + [pad] * (width - len(e["input_ids"])) for e in batch])
    labels = torch.tensor([e["labels"] + [-100] * (width - len(e["labels"])) for e in batch])
    mask = (torch.arange(width)[None, :] < torch.tensor([len(e["input_ids"]) for e in batch])[:, None]).long()
    with torch.no_grad():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float()
        targets = labels[:, 1:].to(device)
        losses = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=-100,
                                                   reduction="sum")
    return losses.item(), int((targets != -100).sum())


def answer_nll(model, tokenizer, frame, batch_size=8):
    """Summed negative log-likelihood of the answer tokens given the prompt, and the number of answer tokens."""
    encoded = [encode_for_loss(tokenizer, q, a) for q, a in zip(frame["question"], frame["answer"])]
    encoded.sort(key=lambda e: len(e["input_ids"]))
    model.eval()
    parts = in_halving_batches(encoded, batch_size, lambda batch: batch_nll(model, tokenizer, batch))
    return sum(nll for nll, _ in parts), sum(count for _, count in parts)


# **A NaN loss stops the run, with a message.** A loss that turns NaN or infinite (in fp16 usually an overflow of
# 16-bit activations; models trained in bf16, such as Qwen2.5, are prone to it) would otherwise train on silently
# and end in a broken adapter: training stops at the first such logged loss and says what to change.
class NonFiniteLoss(RuntimeError):
    """Training stopped because a loss became NaN or infinite."""


def require_finite(value, what, where, args):
    """Raise NonFiniteLoss, naming the precision and what to change, when a loss is NaN or infinite."""
    if math.isfinite(value):
        return
    precision = "fp16" if args.fp16 else "bf16" if args.bf16 else "fp32"
    advice = ("In fp16 this is usually an overflow of 16-bit activations: set PRECISION='fp32' (or 'bf16' on a GPU "
              "with compute capability 8.0 or newer) and run again." if args.fp16 else
              "Lower the learning rate, or look for empty or extreme examples in the data, and run again.")
    raise NonFiniteLoss(f"Training stopped: the {what} became {value} ({where}, {precision}). {advice}")


class NonFiniteLossStop(TrainerCallback):
    """Stop the training at the first logged training or validation loss that is NaN or infinite."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        """Check every loss in this log entry."""
        for key in ("loss", "eval_loss", "train_loss"):
            if isinstance((logs or {}).get(key), (int, float)):
                require_finite(float(logs[key]), key.replace("_", " "), f"optimizer step {state.global_step}", args)


# **The LM head only where the loss is.** The loss needs the vocabulary projection (the LM head) only at
# answer positions, about half of a packed row. TRL's fused head skips the others only where its Triton
# kernel runs (Ampere and newer GPUs); on a CPU or a T4 it projects every position. `MedSFTTrainer` asks
# the model for the answer positions' logits only (`logits_to_keep`), with the same loss, gradients and
# logged metrics as TRL (tested to 1e-5): 17–20 % less time per token on a 2-core CPU (bench/RESULTS.md).
def answer_positions(labels):
    """Mask of the positions whose next token is scored (label not -100): the only ones the LM head must project."""
    return torch.nn.functional.pad(labels[:, 1:] != -100, (0, 1), value=False)


def answer_only_loss(model, inputs, num_items_in_batch=None):
    """TRL's answer-only loss with the LM head on answer positions only: (loss, logits, log-normalizers, targets)."""
    keep = answer_positions(inputs["labels"])
    features = {k: v for k, v in inputs.items() if k != "labels"}
    logits = model(**features, use_cache=False, logits_to_keep=keep).logits.float()  # (answer tokens, vocabulary)
    targets = inputs["labels"][:, 1:][keep[:, :-1]]
    log_norm = torch.logsumexp(logits, dim=-1)  # on the CPU more exact than log_softmax's float32 sum (1e-6 vs 1e-5)
    total = (log_norm - logits.gather(-1, targets[:, None]).squeeze(-1)).sum()
    count = torch.tensor(len(targets)).clamp(min=1) if num_items_in_batch is None else num_items_in_batch
    return total / count, logits.detach(), log_norm.detach(), targets


class MedSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with fp32 trainable parameters and the LM head run only where the loss is."""

    def __init__(self, *args, **kwargs):
        """Build TRL's trainer, cast the trainable parameters back to fp32, and stop on a NaN loss."""
        super().__init__(*args, **kwargs)
        upcast_trainable_params(self.model)
        self.add_callback(NonFiniteLossStop())

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The plain NLL loss via answer_only_loss; anything else (and Triton, already compact) goes to TRL."""
        plain = (self.args.loss_type == "nll" and self.label_smoother is None and self.compute_loss_func is None
                 and not self.aux_loss_enabled and not return_outputs)
        if not plain or trl_uses_triton(inputs["input_ids"].device):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, logits, log_norm, targets = answer_only_loss(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as TRL: DDP averages the gradients across ranks
        self.log_token_metrics(logits, log_norm, targets, inputs)
        return loss

    def log_token_metrics(self, logits, log_norm, targets, inputs):
        """TRL's logged entropy, token accuracy and token count, from the answer positions only."""
        mode, gather = "train" if self.model.training else "eval", self.accelerator.gather_for_metrics
        entropy = (log_norm - ((logits - log_norm[:, None]).exp() * logits).sum(-1)).sum()
        correct = (logits.argmax(-1) == targets).sum()
        count = gather(torch.tensor(len(targets), device=targets.device)).sum().clamp(min=1)
        tokens = 0
        if mode == "train":
            mask = inputs.get("attention_mask")
            tokens = mask.sum() if mask is not None else torch.tensor(inputs["position_ids"].size(1))
            tokens = gather(tokens.to(targets.device)).sum().item()
        log_trl_metrics(self, mode, (gather(entropy).sum() / count).item(), (gather(correct).sum() / count).item(),
                        tokens)


def training_base(config, model, settings, model_path):
    """The model a configuration trains on: a 4-bit copy for a QLoRA configuration, else the shared model."""
    if config.get("quantization", "none") == "none":
        return model
    return load_quantized_copy(settings, model_path)


# Training and measuring one configuration, then all six (finished ones are reused), and the selection.
def train_one(model, tokenizer, train_ds, eval_ds, config, args):
    """Wrap model with a fresh LoRA adapter for config, train it with SFTTrainer; return (trainer, seconds)."""
    set_seed(args.seed)
    peft_model = get_peft_model(remove_lora_layers(model), lora_config(config))  # never stacked on a rerun
    trainer = MedSFTTrainer(model=peft_model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                            processing_class=tokenizer)
    start = time.perf_counter()
    trainer.train()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return trainer, time.perf_counter() - start


def load_quantized_copy(settings, model_path):
    """A 4-bit NF4 copy of the base model for the QLoRA configuration (GPU only), without checkpointing."""
    quantized, _ = load_model_and_tokenizer(model_path, settings["device"], settings["dtype"], quantize_4bit=True)
    return prepare_model_for_kbit_training(quantized, use_gradient_checkpointing=False)


def run_sweep_config(config, model, tokenizer, train_ds, val_frame, settings, model_path, run_dir):
    """Train one configuration for sweep_steps steps, score it on validation data; return its result row."""
    device = settings["device"]
    release_memory(device)
    reset_peak_memory(device)
    baseline = memory_in_use_mb(device)  # the shared model and anything else already resident
    base = training_base(config, model, settings, model_path)
    resident = model.get_memory_footprint() / 2**20 if base is model else 0.0  # before the adapter is added
    args = sweep_args(config, settings, run_dir)
    trainer, seconds = train_one(base, tokenizer, train_ds, None, config, args)
    peak, reserved = peak_memory_mb(device), peak_reserved_mb(device)  # training's peak, before validation's logits
    nll, n_tokens = answer_nll(trainer.model, tokenizer, val_frame, settings["eval_batch_size"])
    require_finite(nll / n_tokens, "validation loss", config["config"], args)
    row = {**config, "target_modules": ",".join(config["target_modules"]), "max_steps": settings["sweep_steps"],
           "train_loss": trainer.state.log_history[-1]["train_loss"], "eval_loss": nll / n_tokens,
           "eval_perplexity": math.exp(nll / n_tokens), "train_seconds": seconds,
           "trained_tokens": int(trainer.state.num_input_tokens_seen),
           "tokens_per_second": trainer.state.num_input_tokens_seen / seconds,
           "peak_memory_mb": max(0.0, peak - baseline),
           "peak_reserved_mb": None if reserved is None else max(0.0, reserved - baseline),
           "resident_weights_mb": resident,
           "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}
    peft_model = trainer.model
    trainer.accelerator.free_memory()  # drops the optimizer and accelerate's references to the model
    del trainer
    if base is model:
        peft_model.unload()  # remove the LoRA layers again: the next configuration starts from the same base
        release_memory(device, peft_model)
    else:  # TRL's fused LM head also rebinds the 4-bit copy's forward: break that cycle too
        release_memory(device, peft_model, base)
    del peft_model, base  # a QLoRA run's 4-bit copy goes with them
    release_memory(device)
    return row


class EvalEveryFraction(TrainerCallback):
    """Ask the trainer to evaluate about `times` times over the whole run, wherever the steps fall."""

    def __init__(self, times=5):
        """Evaluate about `times` times over the run."""
        self.times = times

    def on_train_begin(self, args, state, control, **kwargs):
        """Set the evaluation interval once the total number of steps is known."""
        args.eval_strategy = "steps"
        args.eval_steps = max(1, state.max_steps // self.times)
        state.eval_steps = args.eval_steps

    def on_step_end(self, args, state, control, **kwargs):
        """Evaluate at every interval and at the last step."""
        control.should_evaluate = state.global_step % args.eval_steps == 0 or state.global_step == state.max_steps
        return control


def selected_config(experiments):
    """The selected row of the experiment table as a LoRA configuration dict."""
    row = experiments[experiments["selected"]].iloc[0].to_dict()
    row["target_modules"] = row["target_modules"].split(",")
    return row


def training_log(log_history):
    """One row per logged step with step, epoch, loss, eval_loss and learning_rate."""
    rows = {}
    for entry in log_history:
        if "loss" in entry or "eval_loss" in entry:
            row = rows.setdefault(entry["step"], {"step": entry["step"], "epoch": entry.get("epoch")})
            row.update({k: entry[k] for k in ("loss", "eval_loss", "learning_rate") if k in entry})
    table = pd.DataFrame(sorted(rows.values(), key=lambda r: r["step"]))
    return table.reindex(columns=["step", "epoch", "loss", "eval_loss", "learning_rate"]).astype(float)


def plot_training(log, path):
    """Training and validation loss over steps, with the learning rate on a second axis."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    train = log.dropna(subset=["loss"])
    evals = log.dropna(subset=["eval_loss"])
    ax.plot(train["step"], train["loss"], marker=".", label="training loss")
    ax.plot(evals["step"], evals["eval_loss"], marker="o", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (answer tokens)")
    lr_axis = ax.twinx()
    lr_axis.plot(train["step"], train["learning_rate"], color="grey", alpha=0.4, label="learning rate")
    lr_axis.set_ylabel("learning rate")
    ax.legend(loc="upper right")
    ax.set_title("Fine-tuning curves")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig


# A CUDA out-of-memory error in training stops with a message that names the setting to lower.
OOM_TRAINING_HINT = ("CUDA ran out of memory during the final training of {model} with packed rows of {max_length} "
                     "tokens. Lower the packed row length `max_length` of the '{profile}' profile (for example "
                     "PROFILES['{profile}'] = dataclasses.replace(PROFILES['{profile}'], max_length={half}) in the "
                     "set-up cell), or set MODEL_ID to a smaller model; then run the notebook again.")


def train_or_explain(trainer, settings, **kwargs):
    """trainer.train(**kwargs), turning a CUDA out-of-memory error into a message naming the setting to lower."""
    try:
        return trainer.train(**kwargs)
    except torch.OutOfMemoryError as error:
        raise RuntimeError(OOM_TRAINING_HINT.format(model=settings["model_id"], max_length=settings["max_length"],
                                                    profile=settings["profile"],
                                                    half=settings["max_length"] // 2)) from error


# Everything the final training used — the LoRA configuration, TRL's full `SFTConfig`, the steps and
# tokens it ran — goes to `metrics/run_hyperparameters.json`, so the run can be repeated without reading code.
def hyperparameters_record(args, config, state, runtime_s=None):
    """The final training's hyperparameters: LoRA config, key SFTConfig fields, steps, tokens, and the full config."""
    world = max(1, int(getattr(args, "world_size", 1) or 1))
    record = {"config": config["config"], "lora_r": int(config["lora_r"]), "lora_alpha": int(config["lora_alpha"]),
              "lora_dropout": float(config["lora_dropout"]), "target_modules": list(config["target_modules"]),
              "quantization": config.get("quantization", "none"), "epochs": float(args.num_train_epochs),
              "global_step": int(state.global_step), "max_steps": int(state.max_steps), "world_size": world,
              "effective_rows_per_step": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
              "trained_tokens": int(state.num_input_tokens_seen), "train_runtime_s": runtime_s}
    for field in (field for field in RECIPE_FIELDS if field not in record):  # max_steps: the trainer's, above
        value = getattr(args, field)
        record[field] = value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
    record["sft_config"] = json.loads(json.dumps(args.to_dict(), default=str))
    return record


# One entry point, one process or several
#
# `train_final` is the whole final training: the cell below calls it once; in several processes
# (`accelerate launch`, `torchrun`) every process calls it and PyTorch DDP averages the
# gradients. The optimizer step stays the same: `grad_accum` packed rows per step *in total*, so each of N
# processes accumulates `grad_accum / N` rows (refused when that does not divide), and the step count, the
# learning-rate schedule and the loss match the one-process run. Only the first process writes files.
def per_process_accumulation(grad_accum, processes):
    """Accumulation steps per process that keep `grad_accum` rows per optimizer step over all processes."""
    if processes < 1 or grad_accum % processes:
        raise ValueError(f"{grad_accum} packed rows per optimizer step cannot be split evenly over {processes} "
                         f"processes: use a number of processes that divides {grad_accum}, or give "
                         f"tools/medllm_train.py a --grad-accum (rows per step) that is a multiple of {processes}.")
    return grad_accum // processes


def final_training_args(settings, out_dir, config, processes=1):
    """The final training's SFTConfig: the sweep's recipe for `epochs` epochs, accumulation split over processes."""
    split = {**settings, "grad_accum": per_process_accumulation(settings["grad_accum"], processes)}
    return sft_config(split, Path(out_dir) / "checkpoints", config["learning_rate"], epochs=settings["epochs"],
                      logging_steps=5)


def batch_report(args, processes, steps):
    """Rows per optimizer step across all processes, and the number of optimizer steps."""
    return {"processes": processes, "rows_per_device_batch": args.per_device_train_batch_size,
            "accumulation_per_process": args.gradient_accumulation_steps,
            "rows_per_optimizer_step": args.per_device_train_batch_size * args.gradient_accumulation_steps * processes,
            "optimizer_steps": steps}


# What the first process saves, and the entry point itself.
def save_final(trainer, tokenizer, out_dir, config, report, runtime_s):
    """On the first process only: log, curves, adapter + tokenizer, hyperparameters; then drop the checkpoints."""
    if not trainer.is_world_process_zero():
        return
    out = Path(out_dir)
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    log = training_log(trainer.state.log_history)
    log.to_csv(out / "metrics" / "training_log.csv", index=False)
    plot_training(log, out / "visualizations" / "training_curves.png")
    adapter_dir = out / "models" / "final_adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    trainer.model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    record = {**hyperparameters_record(trainer.args, config, trainer.state, runtime_s), "batch": report}
    (out / "metrics" / "run_hyperparameters.json").write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    update_run_config(out, final_training={**report, "config": config["config"]})


def extra_callbacks(names):
    """TrainerCallbacks named as "module:ClassName" (comma-separated), each created with no arguments."""
    callbacks = []
    for name in filter(None, (part.strip() for part in names.split(","))):
        module, _, attribute = name.partition(":")
        try:
            callbacks.append(getattr(importlib.import_module(module), attribute)())
        except (ImportError, AttributeError, ValueError) as error:
            raise ValueError(f"MEDLLM_CALLBACKS names {name!r}, which could not be created ({error}): give "
                             "importable module:ClassName pairs, separated by commas.") from error
    return callbacks


def final_callbacks(fingerprint, minutes=None):
    """Evaluation about five times, a checkpoint every few minutes with its manifest, and any MEDLLM_CALLBACKS."""
    minutes = float(os.environ.get("MEDLLM_CHECKPOINT_MINUTES", CHECKPOINT_MINUTES)) if minutes is None else minutes
    callbacks = [EvalEveryFraction(5), CheckpointEvery(minutes), CheckpointManifest(fingerprint)]
    return callbacks + extra_callbacks(os.environ.get("MEDLLM_CALLBACKS", ""))


def train_final(model, tokenizer, train_ds, val_ds, config, settings, out_dir, checkpoint_minutes=None):
    """Train a fresh LoRA adapter on the bare base `model` in this process (one of world_size()), resuming from a
    matching checkpoint; the first process saves the outputs. Returns (peft model, trainer, train output)."""
    out, processes = Path(out_dir), world_size()
    if processes > 1 and settings["device"] == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # DDP over gloo: without it each process would train alone
    model = remove_lora_layers(model)  # a rerun of this cell must not wrap the model twice
    args = final_training_args(settings, out, config, processes)
    model_facts = {"model": settings["model_id"], "dtype": settings["dtype"]}
    fingerprint = run_fingerprint(config, args, data_digest(train_ds, val_ds), model_facts)
    args.output_dir, args.save_total_limit = str(out / "checkpoints" / fingerprint), CHECKPOINTS_KEPT
    resume = find_resume_checkpoint(args.output_dir, fingerprint)
    set_seed(settings["seed"])
    ft_model = get_peft_model(model, lora_config(config))
    trainer = MedSFTTrainer(model=ft_model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                            processing_class=tokenizer, callbacks=final_callbacks(fingerprint, checkpoint_minutes))
    if trainer.args.world_size != processes:
        raise RuntimeError(f"WORLD_SIZE is {processes} but the trainer runs {trainer.args.world_size} process(es).")
    if resume is not None:
        print(f"Resuming the final training from {resume} (optimizer step {resume.name.split('-')[-1]}).")
    result = train_or_explain(trainer, settings, resume_from_checkpoint=str(resume) if resume else None)
    report = batch_report(trainer.args, processes, trainer.state.global_step)
    if trainer.is_world_process_zero():
        seconds = result.metrics["train_runtime"]
        print(f"{config['config']}: {seconds:.0f} s, {trainer.state.num_input_tokens_seen / seconds:.0f} trained "
              f"tokens/s; {report['rows_per_optimizer_step']} packed rows per optimizer step "
              f"({processes} process(es) × {report['accumulation_per_process']}), {report['optimizer_steps']} steps")
    save_final(trainer, tokenizer, out, config, report, result.metrics["train_runtime"])
    return ft_model, trainer, result


# **Several GPUs from this notebook** (Kaggle's 2×T4): set `MEDLLM_NUM_PROCESSES=2` before this section
# (for example `%env MEDLLM_NUM_PROCESSES=2`). The notebook then starts `accelerate launch
# tools/medllm_train.py` with this run's settings: the same `train_final`, in fresh processes that prepare
# the same data and read the experiment table Section 3 wrote (this needs the repository checked out next
# to the notebook). The first process saves the adapter, which is loaded here for Section 5.
# `accelerate.notebook_launcher` cannot do this here: it forks the kernel, and a forked process can no
# longer use CUDA once the set-up cell has put the model on a GPU; it also refuses to start once
# `bitsandbytes` is imported, which `peft` does on import.
def accelerate_launch_command(processes, settings, script):
    """`accelerate launch` argv and MEDLLM_* environment that run the terminal script with this run's settings."""
    env = {**os.environ, "MEDLLM_PROFILE": settings["profile"], "MEDLLM_MODEL_ID": settings["model_id"],
           "MEDLLM_DATASET": str(settings["dataset"]), "MEDLLM_MAX_EXAMPLES": str(settings["max_examples"]),
           "MEDLLM_EPOCHS": str(settings["epochs"]), "MEDLLM_RESULTS_DIR": str(settings["results_dir"]),
           "MEDLLM_SEED": str(settings["seed"])}
    argv = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script),
            "--grad-accum", str(settings["grad_accum"])]
    return argv, env


def launch_final_training(processes, model, settings, out_dir):
    """Run train_final in `processes` processes with `accelerate launch`; return `model` with their adapter."""
    from peft import PeftModel

    per_process_accumulation(settings["grad_accum"], processes)  # refuse before starting anything
    script = Path(os.environ.get("MEDLLM_HOME", ".")) / "tools" / "medllm_train.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: several processes are started with `accelerate launch` on the "
                                "repository's tools/medllm_train.py. Run the notebook from a clone of the repository "
                                "(or set MEDLLM_HOME to one), or run that script from a terminal (see the README).")
    argv, env = accelerate_launch_command(processes, settings, script)
    subprocess.run(argv, env=env, check=True)
    return PeftModel.from_pretrained(model, Path(out_dir) / "models" / "final_adapter")


# A QLoRA row trains with its norms, embeddings and LM head in fp32 (`prepare_model_for_kbit_training` casts them
# for stable training); for generation and scoring they go back to the compute dtype (fp16 on a T4), or every
# answer would run those layers in fp32. The adapter stays fp32.
def cast_frozen_to_compute_dtype(model, dtype):
    """Cast the frozen floating-point weights that are not 4-bit (norms, embeddings, head) to `dtype`; count them."""
    target, changed = getattr(torch, dtype), 0
    for param in model.parameters():
        if not param.requires_grad and param.dtype.is_floating_point and param.dtype not in {target, torch.uint8}:
            param.data = param.data.to(target)
            changed += 1
    return changed
