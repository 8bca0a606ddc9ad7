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
# examples never attend to each other; 16-bit weights on a GPU (`PRECISION`: fp16 on a T4, bf16 only where
# the GPU has it natively), no gradient checkpointing (the model fits).
#
# **Measured per configuration:** train loss, validation loss and perplexity (answer tokens only), seconds,
# trained tokens per second, trainable parameters and **peak memory above what was in use before the run
# started** (CUDA allocator on a GPU, resident set on a CPU); the shared 16-bit weights it trained on are a
# separate column (`resident_weights_mb`), so a QLoRA row — whose 4-bit copy is loaded inside its run and
# released after it — is compared fairly. Everything a run held is released before the next one. Each
# result is saved as soon as it finishes, so a rerun after a disconnect skips it. A selected QLoRA row is
# trained in 4-bit again in Section 4.

# %% tags=["lib"]
import gc
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

# %% [markdown]
# Build the datasets once. QLoRA needs `bitsandbytes` on a CUDA GPU; elsewhere the sixth configuration is
# a higher-learning-rate all-linear variant (announced below).

# %%
mark_section(OUT, "3. LoRA experiments")
warnings.filterwarnings("ignore", message=".*padding-free.*")
train_ds = Dataset.from_list(train_records)
val_ds = Dataset.from_list(to_prompt_completion(splits["val"]))
QLORA = S["qlora"] and importlib.util.find_spec("bitsandbytes") is not None
if not QLORA:
    announce("No CUDA GPU with bitsandbytes (compute capability 6.0+): the 4-bit QLoRA configuration is replaced "
             "by 'r16-all-lr1e-3'.")
CONFIGS = sweep_configs(QLORA)
pd.DataFrame(CONFIGS)

# %% [markdown]
# The training recipe (TRL's `SFTConfig`), the step budget, and the fingerprint that tells whether a
# saved sweep run was made with the same recipe, data and model.

# %% tags=["lib"]
def sft_config(settings, output_dir, learning_rate, max_steps=-1, epochs=1.0, logging_steps=5, warmup=0.05):
    """TRL SFTConfig for our recipe: packed answer-only rows, no padding, the decided precision, no checkpointing."""
    args = SFTConfig(
        output_dir=str(output_dir), learning_rate=learning_rate, max_steps=max_steps, num_train_epochs=epochs,
        per_device_train_batch_size=1, per_device_eval_batch_size=1,
        gradient_accumulation_steps=settings["grad_accum"],
        max_length=settings["max_length"], packing=True, packing_strategy="bfd", completion_only_loss=True,
        gradient_checkpointing=False, bf16=settings["bf16"], fp16=settings["fp16"],
        use_cpu=settings.get("device", "cpu") == "cpu",  # transformers accepts bf16 on a CPU only with use_cpu
        lr_scheduler_type="cosine", warmup_steps=warmup, weight_decay=0.0, logging_steps=logging_steps,
        eval_strategy="no", save_strategy="no", report_to="none", seed=settings["seed"], data_seed=settings["seed"],
        include_num_input_tokens_seen=True, dataloader_num_workers=0, disable_tqdm=not settings.get("progress"),
        logging_nan_inf_filter=False,  # a NaN loss must reach the log (and NonFiniteLossStop), not be averaged away
    )
    return one_device_unless_launched(args)


def one_device_unless_launched(args):
    """Train on one GPU when several are visible to a single process: TRL refuses nn.DataParallel (n_gpu > 1)."""
    if args.n_gpu > 1:  # torchrun / accelerate launch give each process one GPU and n_gpu 1 already
        args._n_gpu = 1  # private: what Trainer.__init__ itself does for a model split over devices
    return args


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
# Scoring a configuration: the token-weighted negative log-likelihood of the validation answers (prompt
# tokens excluded), in batches that halve and retry on a CUDA out-of-memory error.

# %% tags=["lib"]
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

# %% [markdown]
# **Memory and QLoRA.** Each run's memory is its peak *above* what was in use when it started; everything
# it held is released before the next one (including the `forward` that accelerate and TRL bind to the
# model, which makes reference cycles). TRL casts a 4-bit model's trainable weights to bf16, which fp16's
# gradient scaler cannot unscale, so `MedSFTTrainer` keeps them in fp32.

# %% tags=["lib"]
def memory_in_use_mb(device):
    """Memory in use now: CUDA allocated on a GPU, the process's resident set on a CPU (MB)."""
    if device == "cuda":
        return torch.cuda.memory_allocated() / 2**20
    return _proc_status_kb("VmRSS") / 1024


def reset_peak_memory(device):
    """Start a new peak: CUDA's peak counter, or Linux's resident-set high-water mark (clear_refs 5)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the CPU peak is the process's lifetime peak, as before


def peak_memory_mb(device):
    """Peak memory since the last reset: CUDA peak allocated on a GPU, the resident-set high-water mark on a CPU."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return (_proc_status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def peak_reserved_mb(device):
    """Peak memory the CUDA caching allocator held since the last reset (what the GPU had to give); None on a CPU."""
    return torch.cuda.max_memory_reserved() / 2**20 if device == "cuda" else None


def _proc_status_kb(field):
    """A kB field of /proc/self/status (0 where there is none)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def release_memory(device, *models):
    """Free what a finished run held: break the forward-rebinding cycles, collect, empty the CUDA cache."""
    for model in models:
        for name in ("forward", "_original_forward"):  # set by accelerate (mixed precision) and TRL (fused LM head)
            model.__dict__.pop(name, None)
    del models
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def upcast_trainable_params(model):
    """Cast trainable parameters to fp32 (TRL makes a 4-bit model's LoRA weights bf16; fp16 AMP cannot unscale bf16)."""
    changed = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
            changed += 1
    return changed


# %% [markdown]
# **A NaN loss stops the run, with a message.** A loss that turns NaN or infinite (in fp16 usually an overflow of
# 16-bit activations; models trained in bf16, such as Qwen2.5, are prone to it) would otherwise train on silently
# and end in a broken adapter: training stops at the first such logged loss and says what to change.

# %% tags=["lib"]
from transformers import TrainerCallback


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


# %% [markdown]
# **The LM head only where the loss is.** The loss needs the vocabulary projection (the LM head) only at
# answer positions, about half of a packed row. TRL's fused head skips the others only where its Triton
# kernel runs (Ampere and newer GPUs); on a CPU or a T4 it projects every position. `MedSFTTrainer` asks
# the model for the answer positions' logits only (`logits_to_keep`), with the same loss, gradients and
# logged metrics as TRL (tested to 1e-5): 17–20 % less time per token on a 2-core CPU (bench/RESULTS.md).

# %% tags=["lib"]
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
        from trl.kernels.chunked_logprob import _use_triton  # where TRL's fused head skips ignored positions itself

        plain = (self.args.loss_type == "nll" and self.label_smoother is None and self.compute_loss_func is None
                 and not self.aux_loss_enabled and not return_outputs)
        if not plain or _use_triton(inputs["input_ids"].device):
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
        self._metrics[mode]["entropy"].append((gather(entropy).sum() / count).item())
        self._metrics[mode]["mean_token_accuracy"].append((gather(correct).sum() / count).item())
        if mode == "train":
            mask = inputs.get("attention_mask")
            tokens = mask.sum() if mask is not None else torch.tensor(inputs["position_ids"].size(1))
            self._total_train_tokens += gather(tokens.to(targets.device)).sum().item()
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]


def training_base(config, model, settings, model_path):
    """The model a configuration trains on: a 4-bit copy for a QLoRA configuration, else the shared model."""
    if config.get("quantization", "none") == "none":
        return model
    return load_quantized_copy(settings, model_path)

# %% [markdown]
# Training and measuring one configuration, then all six (finished ones are reused), and the selection.

# %% tags=["lib"]
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

# %% [markdown]
# All six, each saved as it finishes (a saved one with the same fingerprint is reused), then the selection.

# %% tags=["lib"]
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
             "eval_perplexity", "train_seconds", "tokens_per_second", "peak_memory_mb", "resident_weights_mb",
             "trainable_params", "selected"]]

# %% [markdown]
# The comparison plot.

# %% tags=["lib"]
def plot_sweep(table, path):
    """Bar charts of validation loss, tokens per second and peak memory per configuration."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = ["tab:orange" if s else "tab:blue" for s in table["selected"]]
    panels = {"eval_loss": "Validation loss (answer tokens) ↓", "tokens_per_second": "Trained tokens per second ↑",
              "peak_memory_mb": "Memory to train it (MB): weights + peak above them"}
    for ax, (column, title) in zip(axes, panels.items()):
        left = table["resident_weights_mb"] if column == "peak_memory_mb" and "resident_weights_mb" in table else None
        if left is not None:
            ax.barh(table["config"], left, color="lightgrey", label="resident 16-bit weights")
        ax.barh(table["config"], table[column], left=left, color=colors)
        ax.set_title(title)
        ax.invert_yaxis()
    axes[0].set_xlim(table["eval_loss"].min() * 0.95, table["eval_loss"].max() * 1.02)
    fig.suptitle("LoRA experiments (orange = selected)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig

# %%
SELECTED = experiments[experiments["selected"]].iloc[0].to_dict()
plot_sweep(experiments, OUT / "visualizations" / "experiment_comparison.png")
print(f"Selected configuration: {SELECTED['config']} (validation loss {SELECTED['eval_loss']:.4f})")
