"""The CUDA path without a GPU: the device decision, QLoRA dtypes, memory accounting, Colab set-up and progress bars."""

import gc
import subprocess
import types
import weakref
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

GB = 2**30
# name: (capability, memory in GB, native bf16) -> expected (precision, dtype, qlora, triton loss, gen cap, eval cap)
MATRIX = {
    "T4": ((7, 5), 15.0, False, ("fp16", "float16", True, False, 32, 16)),
    "P100": ((6, 0), 16.0, False, ("fp16", "float16", True, False, 32, 16)),
    "V100": ((7, 0), 16.0, False, ("fp16", "float16", True, False, 32, 16)),
    "L4": ((8, 9), 22.0, True, ("bf16", "bfloat16", True, True, 32, 16)),
    "A100-40GB": ((8, 0), 40.0, True, ("bf16", "bfloat16", True, True, 32, 16)),
    "A100-80GB": ((8, 0), 80.0, True, ("bf16", "bfloat16", True, True, 32, 16)),
    "small-GPU": ((7, 5), 8.0, False, ("fp16", "float16", True, False, 16, 8)),
}


def fake_cuda(monkeypatch, name, capability, memory_gb, emulated_bf16=True):
    """Make torch.cuda describe one GPU; is_bf16_supported() answers as a real one does (emulation counts)."""
    props = types.SimpleNamespace(name=name, total_memory=int(memory_gb * GB), major=capability[0],
                                  minor=capability[1])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: capability >= (8, 0) or emulated_bf16)


@pytest.mark.parametrize("gpu", sorted(MATRIX))
def test_device_decision_matrix_for_gpus(lib, gpu):
    capability, memory, native, expected = MATRIX[gpu]
    decided = lib.device_decision("cuda", capability, memory, native, "auto")
    got = (decided["precision"], decided["dtype"], decided["qlora"], decided["triton_loss"],
           decided["gen_batch_cap"], decided["eval_batch_cap"])
    assert got == expected
    assert decided["bf16"] == (expected[0] == "bf16") and decided["fp16"] == (expected[0] == "fp16")
    assert decided["attention"] == "sdpa"


@pytest.mark.parametrize("native_bf16, precision, bf16", [(True, "bf16", True), (False, "fp32", False)])
def test_device_decision_for_cpus(lib, native_bf16, precision, bf16):
    decided = lib.device_decision("cpu", None, None, native_bf16, "auto")
    assert decided["precision"] == precision and decided["bf16"] is bf16 and not decided["fp16"]
    assert decided["dtype"] == "float32"  # CPU weights stay fp32; bf16 is autocast where the CPU has it
    assert not decided["qlora"] and not decided["triton_loss"]
    assert decided["gen_batch_cap"] == 24 and decided["eval_batch_cap"] == 8


@pytest.mark.parametrize("gpu", ["T4", "P100", "V100"])
def test_no_bf16_anywhere_on_pre_ampere_gpus_even_though_torch_says_supported(lib, monkeypatch, tmp_path, gpu):
    capability, memory, _, _ = MATRIX[gpu]
    fake_cuda(monkeypatch, f"Tesla {gpu}", capability, memory)
    assert torch.cuda.is_bf16_supported()  # what a real T4 answers: emulation counts by default
    device = lib.detect_device("auto")
    assert device["dtype"] == "float16" and device["fp16"] and not device["bf16"]
    assert device["capability"] == capability and device["memory_gb"] == memory
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "auto"}, device)
    assert settings["profile"] == "gpu" and settings["gen_batch_size"] == 32 and settings["eval_batch_size"] == 16
    assert settings["fp16"] and not settings["bf16"]  # what sft_config passes to SFTConfig as fp16=/bf16=
    assert "bfloat16" not in {str(v) for v in settings.values()}
    record = lib.gpu_record(settings)
    assert record == {"name": f"Tesla {gpu}", "capability": f"{capability[0]}.{capability[1]}",
                      "memory_gb": memory, "triton_loss": False}


def test_forcing_precision(lib, monkeypatch):
    a100 = lib.device_decision("cuda", (8, 0), 40.0, True, "fp16")  # reproduce a T4 run on an A100
    assert a100["precision"] == "fp16" and a100["dtype"] == "float16" and not a100["bf16"]
    assert lib.device_decision("cuda", (7, 5), 15.0, False, "fp32")["dtype"] == "float32"
    assert lib.device_decision("cpu", None, None, True, "bf16")["bf16"]
    with pytest.raises(ValueError, match=r"compute capability 7\.5\).*no native bf16.*'fp16'"):
        lib.device_decision("cuda", (7, 5), 15.0, False, "bf16")
    with pytest.raises(ValueError, match="this CPU has no native bf16"):
        lib.device_decision("cpu", None, None, False, "bf16")
    with pytest.raises(ValueError, match="fp16.*needs a CUDA GPU"):
        lib.device_decision("cpu", None, None, False, "fp16")
    with pytest.raises(ValueError, match="Unknown PRECISION 'half'"):
        lib.device_decision("cpu", None, None, False, "half")
    resolved = lib.apply_env_overrides(dict(lib.PARAM_DEFAULTS), {"MEDLLM_PRECISION": "fp32"})
    assert resolved["PRECISION"] == "fp32"


def test_parameters_cell_and_defaults_list_precision(lib):
    notebook = nbformat.read(ROOT / "medical-llm-pipeline-standalone-colab.ipynb", as_version=4)
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    assert 'PRECISION = "auto"' in parameters.source
    assert lib.PARAM_DEFAULTS["PRECISION"] == "auto"


def test_trl_triton_loss_switch(lib):
    from trl.kernels import chunked_logprob

    before = chunked_logprob._TRITON_AVAILABLE
    try:
        lib.use_trl_triton_loss(False)
        assert not chunked_logprob._use_triton(torch.device("cuda"))  # TRL's torch tiles, the path CPUs run
    finally:
        chunked_logprob._TRITON_AVAILABLE = before


def tiny_model(tokenizer):
    """A randomly initialised two-layer Llama with the embedded tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


def test_upcast_fixes_lora_params_cast_to_bf16(lib, tokenizer):
    from peft import get_peft_model

    model = get_peft_model(tiny_model(tokenizer), lib.lora_config(lib.sweep_configs(True)[-1]))
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.to(torch.bfloat16)  # what TRL does to a 4-bit model's adapter
    frozen = {name: p.dtype for name, p in model.named_parameters() if not p.requires_grad}
    assert lib.upcast_trainable_params(model) > 0
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert frozen == {name: p.dtype for name, p in model.named_parameters() if not p.requires_grad}


def test_trainer_keeps_trainable_params_fp32_on_a_quantized_model(lib, tokenizer, tmp_path):
    import pandas as pd
    from datasets import Dataset
    from peft import get_peft_model

    frame = pd.DataFrame({"question": ["What is insulin?"], "answer": ["A hormone."]})
    data = Dataset.from_list(lib.to_prompt_completion(frame))
    settings = {"grad_accum": 1, "max_length": 64, "bf16": False, "fp16": False, "seed": 0}
    trainers = {}
    for name, cls in [("trl", lib.SFTTrainer), ("ours", lib.MedSFTTrainer)]:
        base = tiny_model(tokenizer)
        base.is_loaded_in_4bit = True  # TRL's test for a quantized model (we cannot load 4-bit on a CPU)
        model = get_peft_model(base, lib.lora_config(lib.sweep_configs(True)[-1]))
        trainers[name] = cls(model=model, args=lib.sft_config(settings, tmp_path / name, 1e-4, max_steps=1),
                             train_dataset=data, processing_class=tokenizer)
    dtypes = {name: {p.dtype for p in t.model.parameters() if p.requires_grad} for name, t in trainers.items()}
    assert dtypes["trl"] == {torch.bfloat16}  # TRL's cast (sft_trainer.py, "When using QLoRA ...")
    assert dtypes["ours"] == {torch.float32}


def function_source(name):
    """The source of one function defined in the medllm package."""
    import ast

    for path in sorted((ROOT / "medllm").glob("*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return ast.get_source_segment(source, node)
    raise LookupError(name)


def test_sweep_and_final_training_use_the_fixed_trainer_and_the_4bit_base():
    assert "MedSFTTrainer(" in function_source("train_one")
    assert "training_base(" in function_source("run_sweep_config")
    notebook = nbformat.read(ROOT / "medical-llm-pipeline-standalone-colab.ipynb", as_version=4)
    assert "MedSFTTrainer(" in function_source("train_final")  # the one entry point of the final training
    final = [c.source for c in notebook.cells if c.cell_type == "code" and "package" not in c.metadata.get("tags", [])
             and "train_final(" in c.source]  # Section 4's training cell
    assert len(final) == 1 and "training_base(FINAL" in final[0]
    assert final[0].index("training_base(FINAL") < final[0].index("train_final(")


def test_training_base_is_the_4bit_copy_only_for_qlora(lib, monkeypatch):
    shared, copy = object(), object()
    calls = []
    monkeypatch.setitem(lib.training_base.__globals__, "load_quantized_copy",
                        lambda settings, path: calls.append((settings, path)) or copy)
    lora, qlora = lib.sweep_configs(True)[0], lib.sweep_configs(True)[-1]
    assert lib.training_base(lora, shared, {"s": 1}, "m") is shared and not calls
    assert lib.training_base(qlora, shared, {"s": 1}, "m") is copy and calls == [({"s": 1}, "m")]


class FakeMemory:
    """A fake device memory counter: in use, and a peak that only a reset lowers."""

    def __init__(self, in_use):
        self.in_use, self.peak = in_use, 50_000.0  # a stale peak from before

    def allocate(self, mb):
        self.in_use += mb
        self.peak = max(self.peak, self.in_use)

    def free(self, mb):
        self.in_use -= mb


def test_memory_is_reported_above_what_was_in_use_and_the_4bit_copy_is_dropped(lib, monkeypatch):
    memory = FakeMemory(in_use=2_200.0)  # the shared 16-bit model
    alive = {}

    class Quantized(torch.nn.Module):
        def __init__(self):
            super().__init__()
            memory.allocate(700.0)  # the 4-bit copy
            weakref.finalize(self, memory.free, 700.0)

    class Shared(torch.nn.Module):
        def get_memory_footprint(self):
            return 2_200 * 2**20

    class PeftLike(torch.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base, self.weight = base, torch.nn.Parameter(torch.zeros(3))

        def unload(self):
            return self.base

    def train_one(base, tokenizer, train_ds, eval_ds, config, args):
        memory.allocate(300.0)  # activations and optimizer state
        memory.free(300.0)
        alive["base"] = weakref.ref(base)
        peft = PeftLike(base)
        peft.forward = types.MethodType(lambda self: None, peft)  # accelerate's rebinding: a reference cycle
        state = types.SimpleNamespace(log_history=[{"train_loss": 1.0}], num_input_tokens_seen=100)
        return types.SimpleNamespace(model=peft, state=state,
                                     accelerator=types.SimpleNamespace(free_memory=lambda: None)), 2.0

    g = lib.run_sweep_config.__globals__
    monkeypatch.setitem(g, "memory_in_use_mb", lambda device: memory.in_use)
    monkeypatch.setitem(g, "peak_memory_mb", lambda device: memory.peak)
    monkeypatch.setitem(g, "reset_peak_memory", lambda device: setattr(memory, "peak", memory.in_use))
    monkeypatch.setitem(g, "load_quantized_copy", lambda settings, path: Quantized())
    monkeypatch.setitem(g, "train_one", train_one)
    def answer_nll(model, tokenizer, frame, batch_size):
        memory.allocate(5_000.0)  # validation's full-vocabulary logits: not what training needs
        memory.free(5_000.0)
        return 10.0, 5

    monkeypatch.setitem(g, "answer_nll", answer_nll)
    monkeypatch.setitem(g, "peak_reserved_mb", lambda device: memory.peak + 100.0)  # the allocator's pool
    settings = {"device": "cuda", "sweep_steps": 2, "eval_batch_size": 8, "grad_accum": 1, "max_length": 64,
                "bf16": False, "fp16": True, "seed": 0}
    monkeypatch.setitem(g, "sweep_args", lambda config, settings, run_dir: types.SimpleNamespace(seed=0))
    shared = Shared()
    lora, qlora = lib.sweep_configs(True)[0], lib.sweep_configs(True)[-1]
    gc.disable()  # the 4-bit copy must go without waiting for the garbage collector's schedule
    try:
        qlora_row = lib.run_sweep_config(qlora, shared, None, None, None, settings, "m", "runs")
        assert alive["base"]() is None and memory.in_use == 2_200.0
        lora_row = lib.run_sweep_config(lora, shared, None, None, None, settings, "m", "runs")
    finally:
        gc.enable()
    assert qlora_row["peak_memory_mb"] == 1_000.0 and qlora_row["resident_weights_mb"] == 0.0
    assert lora_row["peak_memory_mb"] == 300.0 and lora_row["resident_weights_mb"] == 2_200.0
    assert qlora_row["peak_reserved_mb"] == 1_100.0 and lora_row["peak_reserved_mb"] == 400.0


def test_release_memory_breaks_the_forward_rebinding_cycle(lib):
    model = torch.nn.Linear(2, 2)
    model._original_forward = model.forward
    model.forward = types.MethodType(lambda self, x: self._original_forward(x), model)
    ref = weakref.ref(model)
    gc.disable()
    try:
        lib.release_memory("cpu", model)
        del model
        assert ref() is None
    finally:
        gc.enable()


def test_cpu_peak_counter_resets(lib):
    import mmap

    lib.reset_peak_memory("cpu")
    start = lib.memory_in_use_mb("cpu")
    # 40 MB of fresh anonymous pages, each touched: malloc could reuse pages an earlier test freed but kept resident
    block = mmap.mmap(-1, 40 * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    assert lib.peak_memory_mb("cpu") - start >= 35
    block.close()
    lib.reset_peak_memory("cpu")
    assert lib.peak_memory_mb("cpu") - lib.memory_in_use_mb("cpu") < 20


def test_stale_imports_stop_with_restart_instructions(lib):
    modules = {"pyarrow": types.SimpleNamespace(__version__="14.0.2"),
               "huggingface_hub": types.SimpleNamespace(__version__="1.2.0"), "gradio": types.SimpleNamespace()}
    installed = {"pyarrow": "18.1.0", "huggingface-hub": "1.2.0"}.__getitem__
    assert lib.stale_imports(modules, installed) == [("pyarrow", "14.0.2", "18.1.0")]
    with pytest.raises(RuntimeError,
                       match=r"pyarrow 14\.0\.2 → 18\.1\.0.*Runtime → Restart session, then Runtime → Run all"):
        lib.require_fresh_imports(modules, installed)
    lib.require_fresh_imports({"pyarrow": types.SimpleNamespace(__version__="18.1.0")}, installed)

    def missing(name):
        raise lib.importlib.metadata.PackageNotFoundError(name)

    lib.require_fresh_imports(modules, missing)  # not installed any more: nothing to compare


def test_dataset_hub_failure_names_the_cause_and_stops_without_a_sample(lib, monkeypatch, tmp_path, capsys):
    import datasets

    def hub_down(*args, **kwargs):
        raise ConnectionError("Temporary failure in name resolution")

    monkeypatch.setattr(datasets, "load_dataset", hub_down)
    frame, source, _ = lib.load_dataset_frame(None, online=True)  # the embedded sample is next to the repo
    assert source == "embedded" and len(frame)
    assert "ConnectionError: Temporary failure in name resolution" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # only the .ipynb was uploaded: no data/ folder
    monkeypatch.setenv("MEDLLM_HOME", str(tmp_path))
    with pytest.raises(RuntimeError) as stopped:
        lib.load_dataset_frame(None, online=True)
    message = str(stopped.value)
    assert "Temporary failure in name resolution" in message and "not next to the notebook" in message
    assert "set DATASET" in message and "Retry" in message
    with pytest.raises(RuntimeError, match="hub is unreachable.*set DATASET"):
        lib.load_dataset_frame(None, online=False)


def test_model_fallback_names_the_cause(lib, monkeypatch, tmp_path, capsys):
    import huggingface_hub

    def not_cached(*args, **kwargs):
        raise FileNotFoundError("no snapshot of TinyLlama in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    monkeypatch.setitem(lib.resolve_model_source.__globals__, "embedded_model_dir", lambda: tmp_path)
    assert lib.resolve_model_source("TinyLlama/TinyLlama-1.1B-Chat-v1.0", online=False) == (str(tmp_path), "embedded")
    assert "FileNotFoundError: no snapshot of TinyLlama in the cache" in capsys.readouterr().out


@pytest.mark.parametrize("environ, parent, wanted", [
    ({}, "/usr/bin/python3 -m ipykernel_launcher -f kernel.json", True),
    ({}, "/usr/bin/python3 /usr/local/bin/papermill in.ipynb out.ipynb", False),
    ({"CI": "true"}, "python -m ipykernel_launcher", False),
    ({"MEDLLM_QUIET": "1"}, "python -m ipykernel_launcher", False),
])
def test_progress_bars_only_in_interactive_sessions(lib, tmp_path, environ, parent, wanted):
    assert lib.progress_bars_wanted(environ, parent) is wanted
    settings = {"grad_accum": 1, "max_length": 64, "bf16": False, "fp16": False, "seed": 0, "progress": wanted}
    assert lib.sft_config(settings, tmp_path, 1e-4).disable_tqdm is (not wanted)


def test_library_progress_bars_follow_the_decision(lib):
    import datasets
    from transformers.utils import logging as transformers_logging

    try:
        lib.set_library_progress_bars(False)
        assert not datasets.is_progress_bar_enabled() and not transformers_logging.is_progress_bar_enabled()
        lib.set_library_progress_bars(True)
        assert datasets.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    finally:
        lib.set_library_progress_bars(True)


def test_gpu_check_dry_run():
    done = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("sweep: qlora4bit-r16-all-lr5e-4", "final training", "generation", "perplexity", "ui build"):
        assert stage in done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("VERDICT: ✓")
