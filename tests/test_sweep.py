"""The experiment sweep: six configurations, selection by validation loss, and resuming after a disconnect."""

import pandas as pd
import pytest
from datasets import Dataset


def test_six_configurations_with_qlora_only_on_gpu(lib):
    cpu, gpu = lib.sweep_configs(False), lib.sweep_configs(True)
    assert len(cpu) == len(gpu) == 6
    assert len({c["config"] for c in cpu}) == 6
    assert all(c["quantization"] == "none" for c in cpu)
    assert gpu[-1]["quantization"] == "nf4-4bit"
    assert len({c["learning_rate"] for c in cpu}) > 1 and len({c["lora_r"] for c in cpu}) > 1
    assert len({tuple(c["target_modules"]) for c in cpu}) > 1


def test_select_best_marks_exactly_the_lowest_eval_loss(lib):
    table = lib.select_best([{"config": "a", "eval_loss": 2.0}, {"config": "b", "eval_loss": 1.5},
                             {"config": "c", "eval_loss": 1.7}])
    assert table["selected"].tolist() == [False, True, False]


def test_recipe_uses_packing_answer_only_loss_no_checkpointing(lib, tmp_path):
    device = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "cpu"}, device)
    args = lib.sft_config(settings, tmp_path, 1e-4)
    assert args.packing and args.packing_strategy == "bfd" and args.completion_only_loss
    assert not args.gradient_checkpointing and not args.bf16 and not args.fp16


def test_rerun_skips_finished_configurations(lib, embedded_model, tmp_path, monkeypatch):
    model, tokenizer = embedded_model
    frame = pd.DataFrame({"question": ["What is insulin?", "What is anemia?", "What is asthma?"],
                          "answer": ["A hormone that lowers glucose.", "Low hemoglobin.", "Airway narrowing."]})
    device = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
    settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, device), "sweep_steps": 2}
    train = Dataset.from_list(lib.to_prompt_completion(frame))
    configs = lib.sweep_configs(False)[:2]
    data = lib.data_digest(train, frame)
    fingerprint = lambda config: lib.sweep_fingerprint(config, settings, data, "m")  # noqa: E731
    first = lib.run_sweep(configs, model, tokenizer, train, frame, settings, None, tmp_path, fingerprint)
    assert all(row["train_seconds"] > 0 for row in first)
    # the first step trains (no warm-up at learning rate 0), so the two learning rates give different losses
    assert first[0]["train_loss"] != first[1]["train_loss"]
    assert not hasattr(model, "peft_config")  # every adapter was removed again

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished configuration was trained again")

    monkeypatch.setitem(lib.run_sweep.__globals__, "run_sweep_config", must_not_train)
    second = lib.run_sweep(configs, model, tokenizer, train, frame, settings, None, tmp_path, fingerprint)
    assert second == first
    changed = lambda config: lib.sweep_fingerprint(config, {**settings, "seed": 7}, data, "m")  # noqa: E731
    with pytest.raises(AssertionError, match="trained again"):
        lib.run_sweep(configs, model, tokenizer, train, frame, settings, None, tmp_path, changed)


def test_fingerprint_follows_the_training_recipe(lib, monkeypatch):
    device = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
    settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, device), "sweep_steps": 2}
    config = lib.sweep_configs(False)[0]
    before = lib.sweep_fingerprint(config, settings, "d", "m")
    assert before == lib.sweep_fingerprint(config, settings, "d", "m")
    assert before != lib.sweep_fingerprint({**config, "learning_rate": 5e-4}, settings, "d", "m")
    assert before != lib.sweep_fingerprint(config, settings, "other data", "m")
    assert before != lib.sweep_fingerprint(config, settings, "d", "other model")
    with_warmup = lambda config, settings, run_dir: lib.sft_config(  # noqa: E731
        settings, run_dir, config["learning_rate"], max_steps=settings["sweep_steps"], warmup=0.05)
    monkeypatch.setitem(lib.sweep_fingerprint.__globals__, "sweep_args", with_warmup)
    assert before != lib.sweep_fingerprint(config, settings, "d", "m")  # saved runs are not reused


def test_sweep_budget_is_capped_on_small_data_unless_explicit(lib, tokenizer):
    frame = pd.DataFrame({"question": ["What is insulin?"] * 40, "answer": ["A hormone that lowers glucose."] * 40})
    settings = {"max_length": 256, "grad_accum": 1, "sweep_steps": 30, "sweep_steps_explicit": False}
    per_epoch = lib.packed_steps_per_epoch(tokenizer, frame, settings)
    tokens = len(lib.encode_for_loss(tokenizer, "What is insulin?", "A hormone that lowers glucose.")["input_ids"]) * 40
    assert per_epoch == -(-tokens // 256)
    assert lib.sweep_steps_for(settings, final_steps=600) == 30
    assert lib.sweep_steps_for(settings, final_steps=120) == 10
    assert lib.sweep_steps_for(settings, final_steps=5) == 2
    assert lib.sweep_steps_for({**settings, "sweep_steps_explicit": True}, final_steps=5) == 30
