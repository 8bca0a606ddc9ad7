# %% [markdown]
# # 3. LoRA experiment table: six configurations, each trained and measured
#
# **What:** six LoRA configurations that differ in learning rate, rank/alpha and target modules (and, on a
# GPU, a 4-bit QLoRA variant) are each **really trained** for the same `SWEEP_STEPS` optimizer steps, on the
# same training data with the same seed, then scored on the validation split. The configuration with the
# lowest validation loss is selected and used, unchanged, by Section 4.
#
# **How we train fast:** the loss is computed on the answer only; examples are *packed* best-fit-decreasing
# into rows of `max_length` tokens with no padding, and `position_ids` restart at every example so packed
# examples never attend to each other; 16-bit weights on a GPU (fp16 on a T4, bf16 where supported), no
# 8-bit/4-bit quantization unless the model does not fit, and no gradient checkpointing (the model fits).
#
# **Measured per configuration:** train loss, validation loss and perplexity (answer tokens only), seconds,
# trained tokens per second, peak memory (CUDA peak on a GPU, process peak RSS on a CPU) and trainable
# parameters. Each result is saved as soon as it finishes, so a rerun after a disconnect skips it.

# %% tags=["lib"]
import hashlib
import warnings

from datasets import Dataset
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import set_seed
from trl import SFTConfig, SFTTrainer

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def sweep_configs(quantization_available):
    """The six LoRA configurations; the sixth is 4-bit QLoRA where bitsandbytes has a GPU."""
    base = {"lora_dropout": 0.05, "quantization": "none"}
    qv = ["q_proj", "v_proj"]
    rows = [("r8-qv-lr2e-4", 2e-4, 8, qv), ("r8-qv-lr1e-3", 1e-3, 8, qv), ("r16-attn-lr5e-4", 5e-4, 16, ATTENTION),
            ("r16-all-lr5e-4", 5e-4, 16, ALL_LINEAR), ("r32-all-lr2e-4", 2e-4, 32, ALL_LINEAR)]
    configs = [{"config": name, "learning_rate": lr, "lora_r": r, "lora_alpha": 2 * r, "target_modules": modules}
               for name, lr, r, modules in rows]
    if quantization_available:
        configs.append({"config": "qlora4bit-r16-all-lr5e-4", "learning_rate": 5e-4, "lora_r": 16, "lora_alpha": 32,
                        "target_modules": ALL_LINEAR, "quantization": "nf4-4bit"})
    else:
        configs.append({"config": "r16-all-lr1e-3", "learning_rate": 1e-3, "lora_r": 16, "lora_alpha": 32,
                        "target_modules": ALL_LINEAR})
    return [{**base, **config} for config in configs]


def lora_config(config):
    """A PEFT LoraConfig for one experiment configuration."""
    return LoraConfig(r=config["lora_r"], lora_alpha=config["lora_alpha"], lora_dropout=config["lora_dropout"],
                      target_modules=list(config["target_modules"]), task_type="CAUSAL_LM")


def remove_lora_layers(model):
    """The model with every LoRA layer replaced by the layer it wrapped (a no-op on a bare model)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer) and name:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model


def sft_config(settings, output_dir, learning_rate, max_steps=-1, epochs=1.0, logging_steps=5, warmup=0.05):
    """TRL SFTConfig for our recipe: packed answer-only rows, no padding, 16-bit where supported, no checkpointing."""
    return SFTConfig(
        output_dir=str(output_dir), learning_rate=learning_rate, max_steps=max_steps, num_train_epochs=epochs,
        per_device_train_batch_size=1, per_device_eval_batch_size=1,
        gradient_accumulation_steps=settings["grad_accum"],
        max_length=settings["max_length"], packing=True, packing_strategy="bfd", completion_only_loss=True,
        gradient_checkpointing=False, bf16=settings["bf16"], fp16=settings["fp16"],
        lr_scheduler_type="cosine", warmup_steps=warmup, weight_decay=0.0, logging_steps=logging_steps,
        eval_strategy="no", save_strategy="no", report_to="none", seed=settings["seed"], data_seed=settings["seed"],
        include_num_input_tokens_seen=True, dataloader_num_workers=0, disable_tqdm=True,
    )


def peak_memory_mb(device):
    """Peak memory so far: CUDA peak allocated on a GPU, the process's peak RSS on a CPU (MB)."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def packed_steps_per_epoch(tokenizer, frame, settings):
    """Optimizer steps in one epoch: all training tokens / packed row length / rows per step."""
    tokens = sum(len(encode_for_loss(tokenizer, q, a)["input_ids"]) for q, a in zip(frame["question"], frame["answer"]))
    return max(1, math.ceil(tokens / settings["max_length"] / settings["grad_accum"]))


def sweep_steps_for(settings, final_steps):
    """Steps per configuration: an explicit SWEEP_STEPS as given, else the profile's capped at final_steps / 12."""
    if settings["sweep_steps_explicit"]:
        return settings["sweep_steps"]
    return max(2, min(settings["sweep_steps"], final_steps // 12))


RECIPE_FIELDS = ("learning_rate", "max_steps", "warmup_steps", "lr_scheduler_type", "weight_decay", "max_length",
                 "per_device_train_batch_size", "gradient_accumulation_steps", "packing", "packing_strategy",
                 "completion_only_loss", "gradient_checkpointing", "bf16", "fp16", "seed")


def sweep_args(config, settings, run_dir):
    """The SFTConfig of one sweep run: sweep_steps steps, no warm-up (a first step at learning rate 0 is wasted)."""
    return sft_config(settings, Path(run_dir) / config["config"], config["learning_rate"],
                      max_steps=settings["sweep_steps"], logging_steps=max(1, settings["sweep_steps"] // 4), warmup=0)


def config_fingerprint(config, settings, data_name, split_sizes, model_name):
    """A short hash of everything that determines a sweep result, to know when a saved one is reusable."""
    args = sweep_args(config, settings, "unused")  # steps, row length, accumulation, seed: all in the recipe
    recipe = {field: str(getattr(args, field)) for field in RECIPE_FIELDS}
    data = {k: settings[k] for k in ("max_examples", "dtype", "device")}
    payload = json.dumps([config, data, recipe, data_name, split_sizes, model_name], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def train_one(model, tokenizer, train_ds, eval_ds, config, args):
    """Wrap model with a fresh LoRA adapter for config, train it with SFTTrainer; return (trainer, seconds)."""
    set_seed(args.seed)
    peft_model = get_peft_model(remove_lora_layers(model), lora_config(config))  # never stacked on a rerun
    trainer = SFTTrainer(model=peft_model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
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
    if settings["device"] == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    base = load_quantized_copy(settings, model_path) if config["quantization"] != "none" else model
    args = sweep_args(config, settings, run_dir)
    trainer, seconds = train_one(base, tokenizer, train_ds, None, config, args)
    nll, n_tokens = answer_nll(trainer.model, tokenizer, val_frame, settings["eval_batch_size"])
    row = {**config, "target_modules": ",".join(config["target_modules"]), "max_steps": settings["sweep_steps"],
           "train_loss": trainer.state.log_history[-1]["train_loss"], "eval_loss": nll / n_tokens,
           "eval_perplexity": math.exp(nll / n_tokens), "train_seconds": seconds,
           "trained_tokens": int(trainer.state.num_input_tokens_seen),
           "tokens_per_second": trainer.state.num_input_tokens_seen / seconds,
           "peak_memory_mb": peak_memory_mb(settings["device"]),
           "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)}
    trainer.model.unload()  # remove the LoRA layers again: the next configuration starts from the same base
    del trainer
    return row


def run_sweep(configs, model, tokenizer, train_ds, val_frame, settings, model_path, out_dir, fingerprint_of):
    """Run every configuration not already saved with the same fingerprint; return all rows in order."""
    runs = Path(out_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for config in configs:
        saved, fingerprint = runs / f"{config['config']}.json", fingerprint_of(config)
        if saved.exists() and json.loads(saved.read_text()).get("fingerprint") == fingerprint:
            print(f"✓ {config['config']}: already measured, reusing {saved}")
            rows.append(json.loads(saved.read_text()))
            continue
        row = run_sweep_config(config, model, tokenizer, train_ds, val_frame, settings, model_path, runs)
        row["fingerprint"] = fingerprint
        saved.write_text(json.dumps(row, indent=2) + "\n")
        print(f"• {config['config']}: eval_loss {row['eval_loss']:.4f}, {row['train_seconds']:.1f} s, "
              f"{row['tokens_per_second']:.0f} tok/s")
        rows.append(row)
    return rows


def select_best(rows):
    """Experiment table with exactly one `selected` row: the lowest validation loss."""
    table = pd.DataFrame(rows)
    table = table[["config"] + [column for column in table.columns if column != "config"]]
    table["selected"] = False
    table.loc[table["eval_loss"].idxmin(), "selected"] = True
    return table


def plot_sweep(table, path):
    """Bar charts of validation loss, tokens per second and peak memory per configuration."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = ["tab:orange" if s else "tab:blue" for s in table["selected"]]
    panels = {"eval_loss": "Validation loss (answer tokens) ↓", "tokens_per_second": "Trained tokens per second ↑",
              "peak_memory_mb": "Peak memory (MB)"}
    for ax, (column, title) in zip(axes, panels.items()):
        ax.barh(table["config"], table[column], color=colors)
        ax.set_title(title)
        ax.invert_yaxis()
    axes[0].set_xlim(table["eval_loss"].min() * 0.95, table["eval_loss"].max() * 1.02)
    fig.suptitle("LoRA experiments (orange = selected)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig


# %% [markdown]
# Build the datasets once. QLoRA needs `bitsandbytes` on a CUDA GPU; elsewhere the sixth configuration is
# a higher-learning-rate all-linear variant (announced below).

# %%
warnings.filterwarnings("ignore", message=".*padding-free.*")
train_ds = Dataset.from_list(train_records)
val_ds = Dataset.from_list(to_prompt_completion(splits["val"]))
QLORA = S["device"] == "cuda" and importlib.util.find_spec("bitsandbytes") is not None
if not QLORA:
    announce("No CUDA GPU: the 4-bit QLoRA configuration is replaced by 'r16-all-lr1e-3' (4-bit needs CUDA).")
CONFIGS = sweep_configs(QLORA)
pd.DataFrame(CONFIGS)

# %% [markdown]
# The step budget: each configuration trains for `SWEEP_STEPS` optimizer steps; the profile's default is
# capped on small data sets so that the sweep never outweighs the final training.

# %%
FINAL_STEPS = math.ceil(packed_steps_per_epoch(tokenizer, splits["train"], S) * S["epochs"])
SWEEP = {**S, "sweep_steps": sweep_steps_for(S, FINAL_STEPS)}
if SWEEP["sweep_steps"] < S["sweep_steps"]:
    announce(f"SWEEP_STEPS capped from {S['sweep_steps']} to {SWEEP['sweep_steps']}: the final training has only "
             f"{FINAL_STEPS} steps. Set SWEEP_STEPS explicitly to override.")
print(f"Sweep: 6 × {SWEEP['sweep_steps']} steps; final training: about {FINAL_STEPS} steps")

# %% [markdown]
# Train and measure the six configurations (finished ones are reused from `experiments/runs/`).

# %%
split_sizes = {name: len(frame) for name, frame in splits.items()}
fingerprint = lambda config: config_fingerprint(config, SWEEP, DATA_NAME, split_sizes, MODEL_NAME)  # noqa: E731
sweep_start = time.perf_counter()
rows = run_sweep(CONFIGS, model, tokenizer, train_ds, splits["val"], SWEEP, MODEL_PATH, OUT / "experiments",
                 fingerprint)
experiments = select_best(rows)
experiments.drop(columns=["fingerprint"]).to_csv(OUT / "experiments" / "experiment_tracking.csv", index=False)
print(f"Sweep: {time.perf_counter() - sweep_start:.0f} s")
experiments[["config", "learning_rate", "lora_r", "target_modules", "quantization", "train_loss", "eval_loss",
             "eval_perplexity", "train_seconds", "tokens_per_second", "peak_memory_mb", "trainable_params", "selected"]]

# %%
SELECTED = experiments[experiments["selected"]].iloc[0].to_dict()
plot_sweep(experiments, OUT / "visualizations" / "experiment_comparison.png")
print(f"Selected configuration: {SELECTED['config']} (validation loss {SELECTED['eval_loss']:.4f})")
