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


# %% [markdown]
# ### One entry point, one process or several
#
# `train_final` is the whole final training: the cell below calls it once; in several processes
# (`accelerate launch`, `torchrun`) every process calls it and PyTorch DDP averages the
# gradients. The optimizer step stays the same: `grad_accum` packed rows per step *in total*, so each of N
# processes accumulates `grad_accum / N` rows (refused when that does not divide), and the step count, the
# learning-rate schedule and the loss match the one-process run. Only the first process writes files.

# %% tags=["lib"]
def world_size():
    """Number of training processes this one belongs to (set by accelerate launch / torchrun; 1 when alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


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


def save_final(trainer, tokenizer, out_dir, report):
    """On the first process only: training log, curves, adapter + tokenizer, batch report; return the log."""
    log = training_log(trainer.state.log_history)
    if not trainer.is_world_process_zero():
        return log
    out_dir = Path(out_dir)
    log.to_csv(out_dir / "metrics" / "training_log.csv", index=False)
    plot_training(log, out_dir / "visualizations" / "training_curves.png")
    trainer.model.save_pretrained(out_dir / "models" / "final_adapter")
    tokenizer.save_pretrained(out_dir / "models" / "final_adapter")
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    update_run_config(out_dir, final_training=report)
    return log


def train_final(model, tokenizer, train_ds, val_ds, config, settings, out_dir):
    """Train a fresh LoRA adapter for `config` with SFTTrainer in this process (one of world_size()); return it."""
    processes = world_size()
    if processes > 1 and settings["device"] == "cpu":
        os.environ["ACCELERATE_USE_CPU"] = "true"  # DDP over gloo: without it each process would train alone
    args = final_training_args(settings, out_dir, config, processes)
    set_seed(settings["seed"])
    trainer = SFTTrainer(model=get_peft_model(model, lora_config(config)), args=args, train_dataset=train_ds,
                         eval_dataset=val_ds, processing_class=tokenizer, callbacks=[EvalEveryFraction(5)])
    if trainer.args.world_size != processes:
        raise RuntimeError(f"WORLD_SIZE is {processes} but the trainer runs {trainer.args.world_size} process(es).")
    result = trainer.train()
    report = batch_report(trainer.args, processes, trainer.state.global_step)
    if trainer.is_world_process_zero():
        seconds = result.metrics["train_runtime"]
        print(f"{config['config']}: {seconds:.0f} s, {trainer.state.num_input_tokens_seen / seconds:.0f} trained "
              f"tokens/s; {report['rows_per_optimizer_step']} packed rows per optimizer step "
              f"({processes} process(es) × {report['accumulation_per_process']}), {report['optimizer_steps']} steps")
    save_final(trainer, tokenizer, out_dir, {**report, "config": config["config"]})
    return trainer


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
# Train. On a T4 this is the longest step; the table in the README estimates it per profile.

# %%
FINAL = selected_config(experiments)
NUM_PROCESSES = int(os.environ.get("MEDLLM_NUM_PROCESSES", "1"))  # >1: see "Several GPUs" above
if NUM_PROCESSES == 1:
    trainer = train_final(model, tokenizer, train_ds, val_ds, FINAL, S, OUT)
    ft_model = trainer.model
else:
    ft_model = launch_final_training(NUM_PROCESSES, model, S, OUT)
ADAPTER_DIR = OUT / "models" / "final_adapter"
print(f"Adapter saved to {ADAPTER_DIR}: {sorted(p.name for p in ADAPTER_DIR.iterdir())}")
pd.read_csv(OUT / "metrics" / "training_log.csv").tail()
