# %% [markdown]
# # 4. Fine-tuning with TRL's `SFTTrainer` (the selected configuration)
#
# **What:** a fresh LoRA adapter with the configuration Section 3 selected (read from its table, not
# retyped) is trained for `EPOCHS` epochs on the training split with TRL's `SFTTrainer`, with the
# validation loss measured a few times along the way. The adapter and the tokenizer are saved to
# `models/final_adapter/` — a few MB that load on top of the unchanged base model.
#
# **Why this recipe:** the same one as the experiments — packed, padding-free rows, loss on the answer
# tokens only — so the selected configuration behaves here as it did there, only for longer.
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
        self.step = int(step)

    def on_step_end(self, args, state, control, **kwargs):
        """Kill the process, without any clean-up, at the chosen step."""
        if state.global_step == self.step:
            print(f"MEDLLM_FAULT_AFTER_STEP={self.step}: killing the process now.", flush=True)
            os._exit(3)


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


def train_final(model, tokenizer, train_ds, val_ds, config, settings, out_dir, checkpoint_minutes=None):
    """Train a fresh LoRA adapter on the bare base `model`, resuming from a matching checkpoint; save it to
    out_dir/models/final_adapter and delete the checkpoints. Returns (peft model, trainer, train output)."""
    out = Path(out_dir)
    model = remove_lora_layers(model)  # a rerun of this cell must not wrap the model twice
    args = sft_config(settings, out / "checkpoints", config["learning_rate"], epochs=settings["epochs"],
                      logging_steps=5)
    fingerprint = training_fingerprint(config, args, train_ds, val_ds, settings)
    args.output_dir = str(out / "checkpoints" / fingerprint)
    args.save_total_limit = CHECKPOINTS_KEPT
    minutes = float(os.environ.get("MEDLLM_CHECKPOINT_MINUTES", CHECKPOINT_MINUTES)) if checkpoint_minutes is None \
        else checkpoint_minutes
    callbacks = [EvalEveryFraction(5), CheckpointEvery(minutes), CheckpointManifest(fingerprint)]
    if os.environ.get("MEDLLM_FAULT_AFTER_STEP"):
        callbacks.append(FaultAfterStep(os.environ["MEDLLM_FAULT_AFTER_STEP"]))
    resume = find_resume_checkpoint(args.output_dir, fingerprint)
    set_seed(settings["seed"])
    ft_model = get_peft_model(model, lora_config(config))
    trainer = SFTTrainer(model=ft_model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tokenizer, callbacks=callbacks)
    if resume is not None:
        print(f"Resuming the final training from {resume} (optimizer step {resume.name.split('-')[-1]}).")
    result = train_or_explain(trainer, settings, resume_from_checkpoint=str(resume) if resume else None)
    if trainer.args.should_save:
        adapter_dir = out / "models" / "final_adapter"
        shutil.rmtree(adapter_dir, ignore_errors=True)
        ft_model.save_pretrained(adapter_dir)
        tokenizer.save_pretrained(adapter_dir)
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return ft_model, trainer, result


# %% [markdown]
# Train. On a T4 this is the longest step; the table in the README estimates it per profile. A rerun of
# this cell (or of the whole notebook) starts again from the bare base model — the LoRA layers of an earlier
# run are removed first, never stacked — and resumes from a matching checkpoint if one is left.

# %%
FINAL = selected_config(experiments)
ft_model, trainer, train_result = train_final(model, tokenizer, train_ds, val_ds, FINAL, S, OUT)
ft_model.print_trainable_parameters()
print(f"{FINAL['config']}: {train_result.metrics['train_runtime']:.0f} s, "
      f"{trainer.state.num_input_tokens_seen / train_result.metrics['train_runtime']:.0f} trained tokens/s")

# %%
log = training_log(trainer.state.log_history)
log.to_csv(OUT / "metrics" / "training_log.csv", index=False)
plot_training(log, OUT / "visualizations" / "training_curves.png")
ADAPTER_DIR = OUT / "models" / "final_adapter"
print(f"Adapter saved to {ADAPTER_DIR}: {sorted(p.name for p in ADAPTER_DIR.iterdir())}")
log.tail()
