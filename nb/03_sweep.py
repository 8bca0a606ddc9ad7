# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

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

# %% [markdown]
# Build the datasets once. QLoRA needs `bitsandbytes` on a CUDA GPU; elsewhere the sixth configuration is
# a higher-learning-rate all-linear variant (announced below).

# %% tags=["package"]
# package: recipe checkpoints train sweep

# %% tags=["imports"]
import importlib.util
import math
import pandas as pd
import time
import warnings
from datasets import Dataset
from medllm.persist import announce, mark_section
from medllm.recipe import data_digest, packed_steps_per_epoch, sweep_configs, sweep_fingerprint, sweep_steps_for
from medllm.data import to_prompt_completion
from medllm.sweep import plot_sweep, run_sweep, select_best

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
# **The recipe at the call**: each configuration becomes one PEFT `LoraConfig`, and every run shares one TRL
# `SFTConfig` (packed answer-only rows, no padding, the precision decided in Set-up).
#
# <!-- source: medllm.recipe.lora_config -->
#
# <!-- source: medllm.recipe.sft_config -->
#
# **The sweep loop**: a configuration already measured with the same fingerprint is reused, not retrained.
#
# <!-- source: medllm.sweep.run_sweep -->
#
# Train and measure the six configurations (finished ones are reused from `experiments/runs/`).

# %%
DATA_DIGEST = data_digest(train_ds, splits["val"])
fingerprint = lambda config: sweep_fingerprint(config, SWEEP, DATA_DIGEST, MODEL_NAME)  # noqa: E731
sweep_start = time.perf_counter()
rows = run_sweep(CONFIGS, model, tokenizer, train_ds, splits["val"], SWEEP, MODEL_PATH, OUT / "experiments",
                 fingerprint)
experiments = select_best(rows)
experiments.drop(columns=["fingerprint"]).to_csv(OUT / "experiments" / "experiment_tracking.csv", index=False)
print(f"Sweep: {time.perf_counter() - sweep_start:.0f} s")
experiments[["config", "learning_rate", "lora_r", "target_modules", "quantization", "train_loss", "eval_loss",
             "eval_perplexity", "train_seconds", "tokens_per_second", "peak_memory_mb", "resident_weights_mb",
             "trainable_params", "selected"]]

# %%
SELECTED = experiments[experiments["selected"]].iloc[0].to_dict()
plot_sweep(experiments, OUT / "visualizations" / "experiment_comparison.png")
print(f"Selected configuration: {SELECTED['config']} (validation loss {SELECTED['eval_loss']:.4f})")
