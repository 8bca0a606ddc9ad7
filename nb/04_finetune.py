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
# Train. On a T4 this is the longest step; the table in the README estimates it per profile.

# %%
mark_section(OUT, "4. Fine-tuning")
FINAL = selected_config(experiments)
final_args = sft_config(S, OUT / "checkpoints", FINAL["learning_rate"], epochs=S["epochs"], logging_steps=5)
set_seed(S["seed"])
ft_model = get_peft_model(training_base(FINAL, model, S, MODEL_PATH), lora_config(FINAL))  # 4-bit for QLoRA
trainer = MedSFTTrainer(model=ft_model, args=final_args, train_dataset=train_ds, eval_dataset=val_ds,
                     processing_class=tokenizer, callbacks=[EvalEveryFraction(5)])
ft_model.print_trainable_parameters()
train_result = trainer.train()
print(f"{FINAL['config']}: {train_result.metrics['train_runtime']:.0f} s, "
      f"{trainer.state.num_input_tokens_seen / train_result.metrics['train_runtime']:.0f} trained tokens/s")

# %%
log = training_log(trainer.state.log_history)
log.to_csv(OUT / "metrics" / "training_log.csv", index=False)
plot_training(log, OUT / "visualizations" / "training_curves.png")
ADAPTER_DIR = OUT / "models" / "final_adapter"
ft_model.save_pretrained(ADAPTER_DIR)
tokenizer.save_pretrained(ADAPTER_DIR)
shutil.rmtree(OUT / "checkpoints", ignore_errors=True)
print(f"Adapter saved to {ADAPTER_DIR}: {sorted(p.name for p in ADAPTER_DIR.iterdir())}")
log.tail()

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


# %%
HYPERPARAMETERS = hyperparameters_record(final_args, FINAL, trainer.state, train_result.metrics["train_runtime"])
(OUT / "metrics" / "run_hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS, indent=2) + "\n")
{k: v for k, v in HYPERPARAMETERS.items() if k != "sft_config"}
