"""The device decision pushed through the libraries' own checks: for every faked device the real SFTConfig and
MedSFTTrainer are built (transformers' bf16/device checks, accelerate's mixed precision and GradScaler, TRL's
DataParallel refusal), a real step trains in whatever precision this CPU gets, and issue 18's CUDA-path fixes
(two GPUs, the report's hardware line, the launcher's QLoRA row, peak memory, NaN losses, SDPA GQA, QLoRA
generation dtype) each have a CPU test."""

import json
import math
import sys
import types

import pandas as pd
import pytest
import torch
from conftest import ROOT, patch_everywhere
from fake_devices import DEVICES, fake_cuda, no_model_transfer, reset_accelerate_state

# device -> (precision, accelerate's mixed_precision, GradScaler, n_gpu, TRL's Triton loss, SDPA enable_gqa)
EXPECTED = {
    "T4": ("fp16", "fp16", True, 1, False, False),
    "P100": ("fp16", "fp16", True, 1, False, False),
    "V100": ("fp16", "fp16", True, 1, False, False),
    "L4": ("bf16", "bf16", False, 1, True, True),
    "A100": ("bf16", "bf16", False, 1, True, True),
    "2xT4": ("fp16", "fp16", True, 1, False, False),
    "CPU-bf16": ("bf16", "bf16", False, 0, False, True),
    "CPU": ("fp32", "no", False, 0, False, True),
}


@pytest.fixture(autouse=True)
def fresh_accelerate_state(lib):
    """Every test starts and ends with accelerate's state describing the real machine, and the kernel switches on."""
    from trl.kernels import chunked_logprob

    triton = chunked_logprob._TRITON_AVAILABLE
    reset_accelerate_state()
    yield
    reset_accelerate_state()
    lib.use_sdpa_gqa(True)  # the launcher test sets a faked T4's switches, as the notebook does on a real one
    chunked_logprob._TRITON_AVAILABLE = triton


def tiny_model(tokenizer, **overrides):
    """A randomly initialised two-layer Llama with grouped key/value heads and the embedded tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         **overrides)
    return LlamaForCausalLM(config)


def tiny_dataset(lib):
    """Four prompt/completion records in the notebook's chat format."""
    from datasets import Dataset

    frame = pd.DataFrame({"question": ["What is insulin?", "What is anemia?", "What does the liver do?",
                                       "What is a fever?"],
                          "answer": ["A hormone.", "Too few red cells.", "It clears toxins.", "A high temperature."]})
    return Dataset.from_list(lib.to_prompt_completion(frame))


def decided(lib, monkeypatch, device):
    """The notebook's device dict for a faked device (call inside fake_cuda(device))."""
    monkeypatch.setitem(lib.device_facts.__globals__, "cpu_supports_bf16", lambda: device.native_bf16)
    return lib.detect_device("auto")


def smoke_settings(lib, device):
    """The smoke profile's run settings on `device` (small rows, one row per step)."""
    return lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, device)


@pytest.mark.parametrize("name", list(DEVICES))
def test_the_real_config_and_trainer_accept_each_decision(lib, tokenizer, monkeypatch, tmp_path, name):
    from peft import get_peft_model

    device, expected = DEVICES[name], EXPECTED[name]
    with fake_cuda(device):
        decision = decided(lib, monkeypatch, device)
        assert (decision["precision"], decision["triton_loss"], decision["sdpa_gqa"]) == (
            expected[0], expected[4], expected[5])
        settings = smoke_settings(lib, decision)
        for config in lib.sweep_configs(settings["qlora"]):  # TrainingArguments' checks run for every sweep row
            args = lib.sweep_args(config, settings, tmp_path)
            assert (args.fp16, args.bf16, args.use_cpu) == (expected[0] == "fp16", expected[0] == "bf16",
                                                            device.kind == "cpu")
        config = lib.sweep_configs(False)[3]
        args = lib.final_training_args(settings, tmp_path, config)
        with no_model_transfer(lib.MedSFTTrainer) as moved:
            trainer = lib.MedSFTTrainer(model=get_peft_model(tiny_model(tokenizer), lib.lora_config(config)),
                                        args=args, train_dataset=tiny_dataset(lib), processing_class=tokenizer)
        precision, mixed, scaler, n_gpu = expected[:4]
        assert trainer.accelerator.mixed_precision == mixed and trainer.args.n_gpu == n_gpu
        assert (trainer.accelerator.scaler is not None) is scaler  # fp16's GradScaler, built by accelerate
        assert trainer.accelerator.native_amp is (mixed != "no")
        assert trainer.accelerator.device.type == device.kind and [d.type for d in moved] == [device.kind]
        assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}
        assert any(isinstance(c, lib.NonFiniteLossStop) for c in trainer.callback_handler.callbacks)


def test_what_the_libraries_refuse_is_refused_here(lib, tokenizer, tmp_path):
    """Negative controls: the checks the matrix passes through do fire on the decisions this issue fixed."""
    from trl import SFTConfig

    with fake_cuda(DEVICES["CPU"]):  # bf16 on a CPU without use_cpu: the crash of issue 18 on avx512_bf16 machines
        with pytest.raises(ValueError, match="Your setup doesn't support bf16/gpu"):
            SFTConfig(output_dir=str(tmp_path), bf16=True, report_to="none")
    with fake_cuda(DEVICES["2xT4"]):  # two visible GPUs, no launcher: TRL refuses nn.DataParallel
        args = SFTConfig(output_dir=str(tmp_path), fp16=True, report_to="none", max_length=64)
        assert args.n_gpu == 2
        with no_model_transfer(lib.SFTTrainer), pytest.raises(ValueError, match="nn.DataParallel"):
            lib.SFTTrainer(model=tiny_model(tokenizer), args=args, train_dataset=tiny_dataset(lib),
                           processing_class=tokenizer)


def test_two_gpus_train_on_one_unless_launched(lib, monkeypatch, tmp_path, capsys):
    with fake_cuda(DEVICES["2xT4"]):
        settings = smoke_settings(lib, decided(lib, monkeypatch, DEVICES["2xT4"]))
        assert settings["gpu_count"] == 2
        assert lib.sft_config(settings, tmp_path, 1e-4).n_gpu == 1
        lib.announce_gpus_used(settings)
        assert "2 GPUs are visible: this kernel trains on one" in capsys.readouterr().out
        monkeypatch.setenv("WORLD_SIZE", "2")  # started by accelerate launch / torchrun: one GPU per process already
        lib.announce_gpus_used(settings)
        assert capsys.readouterr().out == ""
    one = types.SimpleNamespace(n_gpu=1, _n_gpu=1)
    assert lib.one_device_unless_launched(one) is one and one._n_gpu == 1


def test_a_real_step_trains_in_the_precision_this_cpu_gets(lib, tokenizer, tmp_path):
    """No faking: this machine's own decision (bf16 with avx512_bf16/AMX, fp32 otherwise) trains two real steps."""
    device = lib.detect_device("auto")
    assert device["precision"] == ("bf16" if lib.cpu_supports_bf16() else "fp32")
    settings = {**smoke_settings(lib, device), "sweep_steps": 2}
    config = lib.sweep_configs(False)[1]
    trainer, seconds = lib.train_one(tiny_model(tokenizer), tokenizer, tiny_dataset(lib), None, config,
                                     lib.sweep_args(config, settings, tmp_path))
    assert trainer.state.global_step == 2 and seconds > 0
    assert trainer.accelerator.mixed_precision == {"bf16": "bf16", "fp32": "no"}[device["precision"]]
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)
    assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}


def test_a_nan_loss_stops_the_training_with_a_message(lib, tokenizer, tmp_path):
    model = tiny_model(tokenizer)
    with torch.no_grad():
        model.model.embed_tokens.weight[5:] = float("nan")  # every real token's embedding is NaN
    settings = {**smoke_settings(lib, lib.detect_device("fp32")), "sweep_steps": 2}
    config = lib.sweep_configs(False)[1]
    with pytest.raises(lib.NonFiniteLoss, match=r"Training stopped: the loss became nan \(optimizer step 1, fp32\)"):
        lib.train_one(model, tokenizer, tiny_dataset(lib), None, config, lib.sweep_args(config, settings, tmp_path))
    fp16 = types.SimpleNamespace(fp16=True, bf16=False)
    with pytest.raises(lib.NonFiniteLoss, match="overflow of 16-bit activations: set PRECISION='fp32'"):
        lib.require_finite(float("inf"), "validation loss", "qlora4bit-r16-all-lr5e-4", fp16)
    lib.require_finite(2.5, "loss", "step 1", fp16)


def test_the_report_of_a_faked_t4_run_says_gpu(lib, monkeypatch, tmp_path):
    from test_report import make_run

    with fake_cuda(DEVICES["T4"]):
        settings = smoke_settings(lib, decided(lib, monkeypatch, DEVICES["T4"]))
    out = make_run(tmp_path / "results", lib)
    config = json.loads((out / "run_config.json").read_text())
    config.update(device=settings["device_name"], dtype=settings["dtype"], precision=settings["precision"],
                  gpu=lib.gpu_record(settings))  # the fields the set-up cell writes
    (out / "run_config.json").write_text(json.dumps(config))
    report = lib.build_report(out)
    assert "This is a GPU run on Tesla T4 (compute capability 7.5, 15.0 GB)." in report
    assert "CPU run" not in report


def test_the_launcher_trains_a_selected_qlora_row_in_4bit(lib, tokenizer, monkeypatch, tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    import medllm_train

    shared, quantized, trained = types.SimpleNamespace(name="shared"), types.SimpleNamespace(name="4-bit"), []
    patch_everywhere(monkeypatch, lib, "hub_reachable", lambda: False)
    patch_everywhere(monkeypatch, lib, "resolve_model_source", lambda model_id, online: ("model-folder", "local"))
    patch_everywhere(monkeypatch, lib, "load_model_and_tokenizer", lambda *args, **kwargs: (shared, tokenizer))
    patch_everywhere(monkeypatch, lib, "load_quantized_copy", lambda settings, path: quantized)  # no 4-bit on a CPU
    patch_everywhere(monkeypatch, lib, "train_final", lambda model, *args: trained.append(model))
    monkeypatch.setenv("MEDLLM_PROFILE", "smoke")
    monkeypatch.setenv("MEDLLM_RESULTS_DIR", str(tmp_path))
    with fake_cuda(DEVICES["T4"]):
        assert medllm_train.main(["--config", "qlora4bit-r16-all-lr5e-4"], lib=lib) == 0
        assert medllm_train.main(["--config", "r16-all-lr5e-4"], lib=lib) == 0
    assert trained == [quantized, shared]


def test_sdpa_gqa_is_off_below_capability_8_and_the_output_is_unchanged(lib, tokenizer, monkeypatch):
    from transformers.integrations import sdpa_attention

    calls, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, *args, **kwargs):
        calls.append((query.shape[1], key.shape[1], kwargs.get("enable_gqa", False)))
        return sdpa(query, key, value, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    model = tiny_model(tokenizer, attn_implementation="sdpa").eval()
    ids = torch.tensor([[1, 50, 60, 70, 80]])
    try:
        with torch.no_grad():
            default = model(input_ids=ids).logits  # no attention mask: transformers asks SDPA for enable_gqa
            assert calls and all(c == (4, 2, True) for c in calls)
            calls.clear()
            lib.use_sdpa_gqa(False)  # what a T4 gets: key/value heads repeated, the memory-efficient kernel can run
            repeated = model(input_ids=ids).logits
            assert calls and all(c == (4, 4, False) for c in calls)
    finally:
        lib.use_sdpa_gqa(True)
    assert sdpa_attention.use_gqa_in_sdpa is sdpa_attention._medllm_use_gqa_in_sdpa
    torch.testing.assert_close(repeated, default, rtol=1e-5, atol=1e-5)


def test_a_qlora_model_generates_in_its_compute_dtype(lib, tokenizer):
    from peft import get_peft_model, prepare_model_for_kbit_training

    base = tiny_model(tokenizer).to(torch.float16)
    base.is_loaded_in_4bit = True  # what prepare_model_for_kbit_training looks at (no 4-bit on a CPU)
    base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    model = get_peft_model(base, lib.lora_config(lib.sweep_configs(True)[-1]))
    assert base.model.norm.weight.dtype == torch.float32  # what the QLoRA row trained with
    changed = lib.cast_frozen_to_compute_dtype(model, "float16")
    assert changed > 0 and base.model.norm.weight.dtype == torch.float16
    assert base.model.embed_tokens.weight.dtype == base.lm_head.weight.dtype == torch.float16
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # the adapter stays fp32
    out = model.generate(input_ids=torch.tensor([[1, 50, 60]]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == 6
    assert lib.cast_frozen_to_compute_dtype(model, "float16") == 0
