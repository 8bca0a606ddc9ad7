"""Device facts and the device decision; memory accounting."""


import gc
import os
import platform
import resource
from pathlib import Path

import torch

from .persist import announce


# The device decision
#
# The hardware facts (CUDA compute capability and memory, or whether this CPU has native bf16) and
# `PRECISION` decide, as plain data, the precision, whether QLoRA runs, TRL's loss kernel and the batch
# caps. `torch.cuda.is_bf16_supported()` is not asked: it answers True on a T4, where bf16 is only emulated.
# Progress bars show in an interactive session and stay out of papermill and CI logs.
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


# What the run records about the GPU, TRL's loss kernel switch, and when progress bars show.
def gpu_record(settings):
    """The GPU facts for run_config.json (None on a CPU)."""
    if settings["device"] != "cuda":
        return None
    return {"name": settings["device_name"], "capability": ".".join(map(str, settings["capability"])),
            "memory_gb": settings["memory_gb"], "triton_loss": settings["triton_loss"]}


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


# **Memory and QLoRA.** Each run's memory is its peak *above* what was in use when it started; everything
# it held is released before the next one (including the `forward` that accelerate and TRL bind to the
# model, which makes reference cycles). TRL casts a 4-bit model's trainable weights to bf16, which fp16's
# gradient scaler cannot unscale, so `MedSFTTrainer` keeps them in fp32.
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
