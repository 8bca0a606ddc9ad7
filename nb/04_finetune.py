# %% [markdown]
# # 4. Fine-tuning with TRL's `SFTTrainer` (the selected configuration)
#
# **What:** a fresh LoRA adapter with the configuration Section 3 selected (read from its table, not
# retyped) is trained for `EPOCHS` epochs on the training split with TRL's `SFTTrainer`, with the
# validation loss measured a few times along the way. The adapter and the tokenizer are saved to
# `models/final_adapter/` — a few MB that load on top of the unchanged base model.
#
# **Why this recipe:** the same one as the experiments — packed, padding-free rows, loss on the answer
# tokens only — so the selected configuration behaves here as it did there, only for longer. If the 4-bit
# QLoRA row was selected, it is trained on a 4-bit copy of the base model here too.
#
# **Nothing lost on a disconnect.** The training saves a checkpoint (adapter, optimizer, scheduler, RNG
# state, trainer state — Trainer's own format) every `CHECKPOINT_MINUTES` minutes of training (3 by default;
# environment variable `MEDLLM_CHECKPOINT_MINUTES`, 0 = every step), keeping the newest two. Time, not a
# step count, decides: a checkpoint of a 1.1B model's LoRA adapter with its optimizer state is about 150 MB,
# which is cheap every few minutes but not every few seconds, and step times differ 50-fold between a T4 and
# a CPU. Each checkpoint gets a manifest with a fingerprint of the configuration, data, model and recipe and a
# checksum of every file. Rerunning into the same `RESULTS_DIR` (or `PERSIST_DIR`) resumes from the newest
# checkpoint whose manifest matches; a checkpoint from another configuration is refused, and a truncated or
# corrupt one (missing manifest or file, wrong checksum) is skipped and removed, each with a message. After a
# successful training the checkpoints are deleted.

# %% tags=["lib"]
from transformers import TrainerCallback


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


# %% [markdown]
# Checkpoints: when to save one, the manifest that marks it complete, and the hook the fault-injection
# test uses to kill a run mid-training.

# %% tags=["lib"]
CHECKPOINT_MANIFEST = "medllm_checkpoint.json"
CHECKPOINT_MINUTES = 3.0  # default interval between checkpoints of the final training
CHECKPOINTS_KEPT = 2
LORA_FIELDS = ("config", "learning_rate", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "quantization")


def file_sha256(path):
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_fingerprint(config, args, train_ds, val_ds, settings):
    """A short hash of the LoRA configuration, training recipe, data and model that a checkpoint belongs to."""
    recipe = {field: str(getattr(args, field)) for field in RECIPE_FIELDS + ("num_train_epochs",)}
    data = hashlib.sha256(json.dumps([train_ds.to_list(), val_ds.to_list()], sort_keys=True).encode()).hexdigest()
    lora = {key: config[key] for key in LORA_FIELDS}
    model = {key: settings[key] for key in ("model_id", "dtype")}
    payload = json.dumps([lora, recipe, data, model], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class CheckpointEvery(TrainerCallback):
    """Ask the trainer for a checkpoint once `minutes` of training have passed since the last one (0 = every step)."""

    def __init__(self, minutes):
        """Checkpoint once `minutes` of training have passed since the last one."""
        self.seconds = 60 * float(minutes)
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        """Request a save when the interval has passed."""
        if time.monotonic() - self.last >= self.seconds and state.global_step < state.max_steps:
            control.should_save = True
        return control

    def on_save(self, args, state, control, **kwargs):
        """Restart the interval after each save."""
        self.last = time.monotonic()


class CheckpointManifest(TrainerCallback):
    """Write the fingerprint and a checksum of every file into each checkpoint, last: it marks it complete."""

    def __init__(self, fingerprint):
        """Remember the fingerprint that each checkpoint's manifest records."""
        self.fingerprint = fingerprint

    def on_save(self, args, state, control, **kwargs):
        """Write medllm_checkpoint.json into the checkpoint that was just saved."""
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not args.should_save or not folder.is_dir():
            return
        files = {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*"))
                 if p.is_file() and p.name != CHECKPOINT_MANIFEST}
        staging = folder / (CHECKPOINT_MANIFEST + ".tmp")
        staging.write_text(json.dumps({"fingerprint": self.fingerprint, "step": state.global_step, "files": files}))
        staging.replace(folder / CHECKPOINT_MANIFEST)


class FaultAfterStep(TrainerCallback):
    """Test hook (MEDLLM_FAULT_AFTER_STEP=N): end the process abruptly after optimizer step N, like a disconnect."""

    def __init__(self, step):
        """Remember the optimizer step after which to end the process."""
        self.step = int(step)

    def on_step_end(self, args, state, control, **kwargs):
        """Kill the process, without any clean-up, at the chosen step."""
        if state.global_step == self.step:
            print(f"MEDLLM_FAULT_AFTER_STEP={self.step}: killing the process now.", flush=True)
            os._exit(3)


# %% [markdown]
# Which checkpoint to resume from: the newest whose manifest matches this configuration and whose files
# all match their checksums. Anything else is reported and removed, never loaded.

# %% tags=["lib"]
def checkpoint_problem(folder, fingerprint):
    """Why a checkpoint folder can't be resumed from (incomplete, corrupt, other configuration), or None."""
    manifest_path = Path(folder) / CHECKPOINT_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "incomplete: no readable manifest (the save was interrupted or the folder is damaged)"
    if manifest.get("fingerprint") != fingerprint:
        return (f"from another configuration (fingerprint {manifest.get('fingerprint')}, this run {fingerprint}): "
                "refused")
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt"):
        if name not in files:
            return f"incomplete: {name} was never written"
    for name, digest in files.items():
        path = Path(folder) / name
        if not path.is_file():
            return f"incomplete: {name} is missing"
        if file_sha256(path) != digest:
            return f"corrupt: {name} does not match its checksum (truncated or overwritten)"
    return None


def find_resume_checkpoint(checkpoint_root, fingerprint):
    """The newest complete checkpoint of this configuration, or None; says why any other one is not used."""
    root = Path(checkpoint_root)
    if root.parent.is_dir():
        for other in sorted(p for p in root.parent.iterdir() if p.is_dir() and p != root):
            announce(f"Not resuming from {other}: it holds checkpoints of another configuration "
                     f"(data, model, LoRA settings or recipe differ). It is removed after this training succeeds.")
    candidates = sorted(root.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if
                        p.name.split("-")[-1].isdigit() else -1, reverse=True)
    for folder in candidates:
        problem = checkpoint_problem(folder, fingerprint)
        if problem is None:
            return folder
        announce(f"Skipping checkpoint {folder}: {problem}. It is removed and never loaded.")
        shutil.rmtree(folder, ignore_errors=True)
    return None


# %% [markdown]
# A CUDA out-of-memory error in training stops with a message that names the setting to lower.

# %% tags=["lib"]
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


# %% [markdown]
# Everything the final training used — the LoRA configuration, TRL's full `SFTConfig`, the steps and
# tokens it ran — goes to `metrics/run_hyperparameters.json`, so the run can be repeated without reading code.

# %% tags=["lib"]
def hyperparameters_record(args, config, state, runtime_s=None):
    """The final training's hyperparameters: LoRA config, key SFTConfig fields, steps, tokens, and the full config."""
    world = max(1, int(getattr(args, "world_size", 1) or 1))
    record = {"config": config["config"], "lora_r": int(config["lora_r"]), "lora_alpha": int(config["lora_alpha"]),
              "lora_dropout": float(config["lora_dropout"]), "target_modules": list(config["target_modules"]),
              "quantization": config.get("quantization", "none"), "epochs": float(args.num_train_epochs),
              "global_step": int(state.global_step), "max_steps": int(state.max_steps), "world_size": world,
              "effective_rows_per_step": args.per_device_train_batch_size * args.gradient_accumulation_steps * world,
              "trained_tokens": int(state.num_input_tokens_seen), "train_runtime_s": runtime_s}
    for field in ("learning_rate", "max_length", "per_device_train_batch_size", "gradient_accumulation_steps",
                  "lr_scheduler_type", "warmup_steps", "weight_decay", "optim", "packing", "packing_strategy",
                  "completion_only_loss", "gradient_checkpointing", "bf16", "fp16", "seed"):
        value = getattr(args, field)
        record[field] = value if isinstance(value, (int, float, bool, str, type(None))) else str(value)
    record["sft_config"] = json.loads(json.dumps(args.to_dict(), default=str))
    return record


# %% [markdown]
# ### One entry point, one process or several
#
# `train_final` is the whole final training: the cell below calls it once; in several processes
# (`accelerate launch`, `torchrun`) every process calls it and PyTorch DDP averages the
# gradients. The optimizer step stays the same: `grad_accum` packed rows per step *in total*, so each of N
# processes accumulates `grad_accum / N` rows (refused when that does not divide), and the step count, the
# learning-rate schedule and the loss match the one-process run. Only the first process writes files.

# %% tags=["lib"]
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


# %% [markdown]
# What the first process saves, and the entry point itself.

# %% tags=["lib"]
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


def final_callbacks(fingerprint, minutes=None):
    """Evaluation about five times, a checkpoint every few minutes with its manifest, and the fault-test hook."""
    minutes = float(os.environ.get("MEDLLM_CHECKPOINT_MINUTES", CHECKPOINT_MINUTES)) if minutes is None else minutes
    callbacks = [EvalEveryFraction(5), CheckpointEvery(minutes), CheckpointManifest(fingerprint)]
    if os.environ.get("MEDLLM_FAULT_AFTER_STEP"):
        callbacks.append(FaultAfterStep(os.environ["MEDLLM_FAULT_AFTER_STEP"]))
    return callbacks


def train_final(model, tokenizer, train_ds, val_ds, config, settings, out_dir, checkpoint_minutes=None):
    """Train a fresh LoRA adapter on the bare base `model` in this process (one of world_size()), resuming from a
    matching checkpoint; the first process saves the outputs. Returns (peft model, trainer, train output)."""
    out, processes = Path(out_dir), world_size()
    if processes > 1 and settings["device"] == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # DDP over gloo: without it each process would train alone
    model = remove_lora_layers(model)  # a rerun of this cell must not wrap the model twice
    args = final_training_args(settings, out, config, processes)
    fingerprint = training_fingerprint(config, args, train_ds, val_ds, settings)
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


# %% [markdown]
# **Several GPUs from this notebook** (Kaggle's 2×T4): set `MEDLLM_NUM_PROCESSES=2` before this section
# (for example `%env MEDLLM_NUM_PROCESSES=2`). The notebook then starts `accelerate launch
# tools/medllm_train.py` with this run's settings: the same `train_final`, in fresh processes that prepare
# the same data and read the experiment table Section 3 wrote (this needs the repository checked out next
# to the notebook). The first process saves the adapter, which is loaded here for Section 5.
# `accelerate.notebook_launcher` cannot do this here: it forks the kernel, and a forked process can no
# longer use CUDA once the set-up cell has put the model on a GPU; it also refuses to start once
# `bitsandbytes` is imported, which `peft` does on import.

# %% tags=["lib"]
import subprocess
import sys


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


# %% [markdown]
# A QLoRA row trains with its norms, embeddings and LM head in fp32 (`prepare_model_for_kbit_training` casts them
# for stable training); for generation and scoring they go back to the compute dtype (fp16 on a T4), or every
# answer would run those layers in fp32. The adapter stays fp32.

# %% tags=["lib"]
def cast_frozen_to_compute_dtype(model, dtype):
    """Cast the frozen floating-point weights that are not 4-bit (norms, embeddings, head) to `dtype`; count them."""
    target, changed = getattr(torch, dtype), 0
    for param in model.parameters():
        if not param.requires_grad and param.dtype.is_floating_point and param.dtype not in {target, torch.uint8}:
            param.data = param.data.to(target)
            changed += 1
    return changed


# %% [markdown]
# Train. On a T4 this is the longest step; the table in the README estimates it per profile. A rerun of
# this cell (or of the whole notebook) starts again from the bare base model — the LoRA layers of an earlier
# run are removed first, never stacked — and resumes from a matching checkpoint if one is left.

# %%
mark_section(OUT, "4. Fine-tuning")
FINAL = selected_config(experiments)
NUM_PROCESSES = int(os.environ.get("MEDLLM_NUM_PROCESSES", "1"))  # >1: see "Several GPUs" above
base = training_base(FINAL, remove_lora_layers(model), S, MODEL_PATH)  # a 4-bit copy for a QLoRA row
if NUM_PROCESSES == 1:
    ft_model, trainer, train_result = train_final(base, tokenizer, train_ds, val_ds, FINAL, S, OUT)
else:
    ft_model = launch_final_training(NUM_PROCESSES, base, S, OUT)
if FINAL["quantization"] != "none":
    cast_frozen_to_compute_dtype(ft_model, S["dtype"])  # generation and perplexity in fp16, as the base model's
ADAPTER_DIR = OUT / "models" / "final_adapter"
print(f"Adapter saved to {ADAPTER_DIR}: {sorted(p.name for p in ADAPTER_DIR.iterdir())}")

# %%
pd.read_csv(OUT / "metrics" / "training_log.csv").tail()

# %% [markdown]
# The hyperparameters the final training used, as saved in `metrics/run_hyperparameters.json`:

# %%
HYPERPARAMETERS = json.loads((OUT / "metrics" / "run_hyperparameters.json").read_text())
pd.Series({k: v for k, v in HYPERPARAMETERS.items() if k not in {"sft_config", "batch"}}, dtype=object).to_frame()

