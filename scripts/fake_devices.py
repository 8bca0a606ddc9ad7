"""Fake GPUs and CPUs for building the real library objects on this CPU (shared by the tests and gpu_check --dry-run).

`fake_cuda` makes torch.cuda answer every query that transformers (TrainingArguments' bf16 check and device set-up),
accelerate (PartialState's device, the fp16 GradScaler, bf16 autocast) and TRL (SFTTrainer's n_gpu > 1 refusal)
ask, as the named GPU would: is_available, device_count, capability and properties, is_bf16_supported (True on
every GPU, as torch answers by default: emulation counts), set_device/current_device, and the memory counters. The
libraries' cached answers are cleared on entry and exit. Nothing runs on the fake device: the caller skips moving
the model to it (`no_model_transfer`), the only step that would need real CUDA memory.
"""

import contextlib
import dataclasses
import types

import torch

GB = 2**30


@dataclasses.dataclass(frozen=True)
class Device:
    """One machine as the libraries see it."""

    name: str
    kind: str  # "cuda" or "cpu"
    capability: tuple = None
    memory_gb: float = None
    count: int = 1
    native_bf16: bool = False


DEVICES = {
    "T4": Device("Tesla T4", "cuda", (7, 5), 15.0),
    "P100": Device("Tesla P100-PCIE-16GB", "cuda", (6, 0), 16.0),
    "V100": Device("Tesla V100-SXM2-16GB", "cuda", (7, 0), 16.0),
    "L4": Device("NVIDIA L4", "cuda", (8, 9), 22.0, native_bf16=True),
    "A100": Device("NVIDIA A100-SXM4-40GB", "cuda", (8, 0), 40.0, native_bf16=True),
    "2xT4": Device("Tesla T4", "cuda", (7, 5), 15.0, count=2),
    "CPU-bf16": Device("AMD EPYC (Zen 4, avx512_bf16)", "cpu", native_bf16=True),
    "CPU": Device("AMD EPYC (Zen 3, AVX2)", "cpu"),
}


def clear_library_caches():
    """Forget the device answers transformers caches (lru_cache) so the next query asks torch again."""
    from transformers.utils import import_utils

    for name in ("is_torch_cuda_available", "is_torch_bf16_gpu_available", "is_torch_fp16_available_on_device",
                 "is_torch_bf16_available_on_device", "is_torch_tf32_available"):
        getattr(getattr(import_utils, name), "cache_clear", lambda: None)()


@contextlib.contextmanager
def fake_cuda(device):
    """Within the block, torch.cuda describes `device` (a GPU Device; a CPU Device leaves torch.cuda as it is)."""
    if device.kind != "cuda":
        clear_library_caches()
        yield
        clear_library_caches()
        return
    props = types.SimpleNamespace(name=device.name, total_memory=int(device.memory_gb * GB),
                                  major=device.capability[0], minor=device.capability[1], multi_processor_count=40)
    current = {"index": 0}
    answers = {
        "is_available": lambda: True, "device_count": lambda: device.count, "is_initialized": lambda: True,
        "get_device_capability": lambda d=None: device.capability, "get_device_properties": lambda d=None: props,
        "get_device_name": lambda d=None: device.name, "is_bf16_supported": lambda including_emulation=True: (
            device.native_bf16 or including_emulation),
        "set_device": lambda d: current.__setitem__("index", getattr(d, "index", d) or 0),
        "current_device": lambda: current["index"], "synchronize": lambda d=None: None, "empty_cache": lambda: None,
        "memory_allocated": lambda d=None: 0, "max_memory_allocated": lambda d=None: 0,
        "memory_reserved": lambda d=None: 0, "max_memory_reserved": lambda d=None: 0,
        "reset_peak_memory_stats": lambda d=None: None, "mem_get_info": lambda d=None: (props.total_memory,) * 2,
    }
    # accelerate >= 1.16 asks torch.accelerator which device this is, before it asks torch.cuda
    accelerator = {"current_accelerator": lambda check_available=False: torch.device("cuda", current["index"]),
                   "is_available": lambda: True, "device_count": lambda: device.count,
                   "current_device_index": lambda: current["index"]}
    saved = {name: getattr(torch.cuda, name) for name in answers}
    saved_accelerator = {name: getattr(torch.accelerator, name) for name in accelerator
                         if hasattr(torch.accelerator, name)}
    try:
        for name, answer in answers.items():
            setattr(torch.cuda, name, answer)
        for name, answer in accelerator.items():
            if name in saved_accelerator:
                setattr(torch.accelerator, name, answer)
        clear_library_caches()
        yield
    finally:
        for name, original in saved.items():
            setattr(torch.cuda, name, original)
        for name, original in saved_accelerator.items():
            setattr(torch.accelerator, name, original)
        clear_library_caches()


@contextlib.contextmanager
def no_model_transfer(trainer_class):
    """Within the block, Trainer records the device it would move the model to instead of moving it."""
    moved = []
    original = trainer_class._move_model_to_device
    trainer_class._move_model_to_device = lambda self, model, device: moved.append(device)
    try:
        yield moved
    finally:
        trainer_class._move_model_to_device = original


def reset_accelerate_state():
    """Drop accelerate's process-wide state, so the next TrainingArguments sets up the real device again."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
