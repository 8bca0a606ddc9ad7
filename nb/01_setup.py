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
# ## Set-up: parameters, installs, device and profile
#
# *A step before Section 2, not a section of its own.* All knobs live in the next cell (tagged
# `parameters`, so `papermill -p NAME VALUE` can set them; `MEDLLM_<NAME>` environment variables work
# too). `None` means "the profile's default".

# %% tags=["parameters"]
# tools/build_notebook.py writes this cell from PARAMETERS in medllm/settings.py

# %% [markdown]
# **The code behind this notebook** lives in a small Python package, `medllm` (one module per stage: data, recipe,
# training, evaluation, rails, UI, report). Folded cells write it next to the notebook, each section just before it
# imports them the modules it uses, so this one file is all Colab needs; double-click a cell's title to read a
# module. In the project's repository the package is the source (`medllm/`) and these cells leave it as it is.

# %% tags=["package"]
# package: __init__ install settings persist library_internals device model

# %%
from medllm.install import install_requirements, install_wanted, require_fresh_imports

# %%
if install_wanted():
    print(install_requirements())
    require_fresh_imports()

# %%
import datetime as dt
import pandas as pd
import sys
from medllm.settings import EMBEDDED_MODEL_NAME, PARAM_DEFAULTS, apply_env_overrides, build_run_settings
from medllm.device import (
    announce_gpus_used, detect_device, gpu_record, progress_bars_wanted, set_library_progress_bars,
)
from medllm.library_internals import use_sdpa_gqa, use_trl_triton_loss
from medllm.persist import (
    announce, library_versions, mark_section, mount_drive_if_needed, resolve_results_dir, seed_everything,
    start_run, update_run_config,
)
from medllm.model import hub_reachable, load_model_and_tokenizer, resolve_model_source, use_hf_token

# %% [markdown]
# Resolve the parameters (papermill values win, then `MEDLLM_*` variables, then profile defaults),
# detect the device, and record the configuration in `run_config.json`.
#
# **Where the outputs live, and what survives.** Everything this run writes goes to one folder, `OUT`:
# `RESULTS_DIR`, or — when `PERSIST_DIR` is set — `PERSIST_DIR/<name of RESULTS_DIR>` (for example
# `PERSIST_DIR = "/content/drive/MyDrive/medllm"` gives `/content/drive/MyDrive/medllm/results`). On Colab a
# `PERSIST_DIR` under `/content/drive` mounts Google Drive (you are asked to allow it once); nothing is mounted
# otherwise. A recycled runtime wipes `/content`, but not Drive: after reconnecting, *Run all* with the same
# parameters reuses the finished LoRA experiments (`experiments/runs/`) and resumes the final training from
# its newest complete checkpoint (`checkpoints/`).
#
# **Running twice gives the same result.** Each run gets a `run_id` (in `run_config.json`); at the start, the
# previous run's outputs in `OUT` are removed, so no file from another profile or run is mixed into this
# one's. Kept are only what is checked before reuse: sweep results and checkpoints (reused only when their
# configuration fingerprint matches) and the saved adapter (replaced by Section 4).

# %%
params = apply_env_overrides({name: globals()[name] for name in PARAM_DEFAULTS})
DEVICE = detect_device(params["PRECISION"])
use_trl_triton_loss(DEVICE["triton_loss"])
use_sdpa_gqa(DEVICE["sdpa_gqa"])
S = {**build_run_settings(params, DEVICE), "progress": progress_bars_wanted()}
announce_gpus_used(S)
set_library_progress_bars(S["progress"])
mount_drive_if_needed(S["persist_dir"], "google.colab" in sys.modules)
OUT = resolve_results_dir(S["results_dir"], S["persist_dir"])
seed_everything(S["seed"])
RUN = start_run(OUT, profile=S["profile"], seed=S["seed"], device=S["device_name"], dtype=S["dtype"],
                precision=S["precision"], gpu=gpu_record(S), output_dir=str(OUT.resolve()),
                persist_dir=S["persist_dir"], versions=library_versions(),
                started_at=dt.datetime.now().isoformat(timespec="seconds"), finished_at=None)
mark_section(OUT, "Set-up", reset=True)
print(f"Run {RUN['run_id']}: outputs in {OUT.resolve()}")
pd.Series(S).to_frame("value")

# %%
HF_TOKEN_SOURCE = use_hf_token()
print(f"Hugging Face token: {'found in the ' + HF_TOKEN_SOURCE if HF_TOKEN_SOURCE else 'none (not needed)'}.")

# %%
ONLINE = hub_reachable()
if not ONLINE:
    announce("The Hugging Face hub is unreachable: running on embedded defaults where needed.")
MODEL_PATH, MODEL_SOURCE = resolve_model_source(S["model_id"], ONLINE)
model, tokenizer = load_model_and_tokenizer(MODEL_PATH, S["device"], S["dtype"], quantize_4bit=S["quantize_4bit"])
MODEL_NAME = S["model_id"] if MODEL_SOURCE != "embedded" else EMBEDDED_MODEL_NAME
update_run_config(OUT, model_id=MODEL_NAME, model_source=MODEL_SOURCE, model_path=str(MODEL_PATH))
print(f"{MODEL_NAME} ({MODEL_SOURCE}): {model.num_parameters() / 1e6:.0f} M parameters, "
      f"{S['dtype']} on {S['device_name']}")
