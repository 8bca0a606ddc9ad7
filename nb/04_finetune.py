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

# %% [markdown]
# Train. On a T4 this is the longest step; the table in the README estimates it per profile. A rerun of
# this cell (or of the whole notebook) starts again from the bare base model — the LoRA layers of an earlier
# run are removed first, never stacked — and resumes from a matching checkpoint if one is left.

# %% tags=["imports"]
import json
import os
import pandas as pd
from medllm.persist import mark_section
from medllm.train import (
    cast_frozen_to_compute_dtype, launch_final_training, selected_config, train_final, training_base,
)
from medllm.recipe import remove_lora_layers

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

