"""Nothing lost: resumable final training, checkpoint checks, PERSIST_DIR, cells run twice, out-of-memory retries."""

import json
import os
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from datasets import Dataset

CPU = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
FRAME = pd.DataFrame({"question": ["What is insulin?", "What is anemia?", "What is asthma?", "What is gout?",
                                   "What causes scurvy?", "What is a stroke?"],
                      "answer": ["A hormone that lowers blood glucose.", "A low hemoglobin concentration.",
                                 "Reversible narrowing of the airways.", "Arthritis from urate crystals.",
                                 "Lack of vitamin C.", "Brain injury from a blocked or burst artery."]})
CONFIG = {"config": "r4-qv", "learning_rate": 1e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
          "target_modules": ["q_proj", "v_proj"], "quantization": "none"}


@pytest.fixture()
def settings(lib):
    """Smoke settings shrunk so the final training has one example per row: four one-row steps on TRAIN."""
    base = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, CPU)
    return {**base, "max_length": 64, "epochs": 1.0, "grad_accum": 1}


@pytest.fixture()
def datasets(lib):
    """(train, val) datasets of the tiny frame."""
    records = lib.to_prompt_completion(FRAME)
    return Dataset.from_list(records[:4]), Dataset.from_list(records[4:])


def adapter_weights(folder):
    """The saved LoRA tensors of an adapter folder."""
    from safetensors.torch import load_file
    return load_file(str(folder / "models" / "final_adapter" / "adapter_model.safetensors"))


def fake_checkpoint(lib, root, step, fingerprint):
    """A checkpoint folder with Trainer's file names and the manifest the callback writes."""
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    for name in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (folder / name).write_bytes(os.urandom(256))
    args = SimpleNamespace(output_dir=str(root), should_save=True)
    lib.CheckpointManifest(fingerprint).on_save(args, SimpleNamespace(global_step=step), None)
    return folder


def test_checkpoint_checks_refuse_other_configuration_and_skip_damage(lib, tmp_path, capsys):
    root = tmp_path / "checkpoints" / "abc"
    good = fake_checkpoint(lib, root, 2, "abc")
    assert lib.checkpoint_problem(good, "abc") is None
    assert "another configuration" in lib.checkpoint_problem(good, "xyz")
    truncated = fake_checkpoint(lib, root, 4, "abc")
    (truncated / "optimizer.pt").write_bytes((truncated / "optimizer.pt").read_bytes()[:100])
    garbled = fake_checkpoint(lib, root, 6, "abc")
    (garbled / "trainer_state.json").write_text("{garbled")
    unfinished = fake_checkpoint(lib, root, 8, "abc")
    (unfinished / lib.CHECKPOINT_MANIFEST).unlink()
    fake_checkpoint(lib, tmp_path / "checkpoints" / "other", 10, "other")
    assert lib.find_resume_checkpoint(root, "abc") == good
    out = capsys.readouterr().out
    assert "checkpoint-4: corrupt: optimizer.pt" in out and "checkpoint-6: corrupt: trainer_state.json" in out
    assert "checkpoint-8: incomplete" in out and "another configuration" in out
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint-2"]  # damaged ones are removed, never loaded


def test_missing_file_and_foreign_manifest_are_refused(lib, tmp_path):
    folder = fake_checkpoint(lib, tmp_path, 3, "abc")
    (folder / "scheduler.pt").unlink()
    assert lib.checkpoint_problem(folder, "abc").startswith("incomplete: scheduler.pt")
    assert lib.find_resume_checkpoint(tmp_path / "none", "abc") is None


def test_fingerprint_changes_with_configuration_data_and_model(lib, settings, datasets, tmp_path):
    train, val = datasets
    args = lib.sft_config(settings, tmp_path, CONFIG["learning_rate"], epochs=1.0)
    data, model = lib.data_digest(train, val), {"model": settings["model_id"], "dtype": "float32"}
    base = lib.run_fingerprint(CONFIG, args, data, model)
    assert base == lib.run_fingerprint({**CONFIG, "train_loss": 9.9}, args, data, model)  # a result is not an input
    assert base != lib.run_fingerprint({**CONFIG, "lora_r": 8}, args, data, model)
    assert base != lib.run_fingerprint(CONFIG, args, lib.data_digest(val, val), model)
    assert base != lib.run_fingerprint(CONFIG, args, data, {**model, "model": "other"})
    longer = lib.sft_config(settings, tmp_path, CONFIG["learning_rate"], epochs=2.0)
    assert base != lib.run_fingerprint(CONFIG, longer, data, model)


def test_data_digest_reads_datasets_and_frames_alike(lib, datasets):
    import pandas as pd
    from datasets import Dataset

    train, _ = datasets
    frame = pd.DataFrame({"question": ["What is gout?", "What is anemia?"], "answer": ["Arthritis.", "Low Hb."]})
    assert lib.data_digest(train, frame) == lib.data_digest(train, Dataset.from_pandas(frame))
    assert lib.data_digest(train, frame) != lib.data_digest(train, frame.iloc[:1])
    assert lib.data_digest(train, frame) != lib.data_digest(train.select(range(len(train) - 1)), frame)


def test_interrupted_training_resumes_to_the_uninterrupted_result(lib, embedded_model, settings, datasets,
                                                                  tmp_path, monkeypatch, capsys):
    model, tokenizer = embedded_model
    train, val = datasets

    def killed(code):
        raise SystemExit(f"killed with {code}")

    monkeypatch.setattr(os, "_exit", killed)
    monkeypatch.setenv("MEDLLM_FAULT_AFTER_STEP", "3")
    monkeypatch.setenv("MEDLLM_CALLBACKS", "fault_hook:FaultAfterStep")  # tests/fault_hook.py
    with pytest.raises(SystemExit):
        lib.train_final(model, tokenizer, train, val, CONFIG, settings, tmp_path / "a", checkpoint_minutes=0)
    folders = list((tmp_path / "a" / "checkpoints").glob("*/checkpoint-*"))
    assert sorted(p.name for p in folders) == ["checkpoint-1", "checkpoint-2"]  # save_total_limit keeps two
    newest = max(folders, key=lambda p: p.name)
    (newest / "adapter_model.safetensors").write_bytes(b"truncated")
    monkeypatch.delenv("MEDLLM_CALLBACKS")
    capsys.readouterr()
    # the model still carries the interrupted run's LoRA layers: train_final must strip them, not stack them
    ft_model, trainer, _ = lib.train_final(model, tokenizer, train, val, CONFIG, settings, tmp_path / "a",
                                           checkpoint_minutes=0)
    out = capsys.readouterr().out
    assert "Skipping checkpoint" in out and "checkpoint-2: corrupt: adapter_model.safetensors" in out
    assert "Resuming the final training from" in out and "checkpoint-1" in out
    assert trainer.state.global_step == trainer.state.max_steps == 4
    assert not (tmp_path / "a" / "checkpoints").exists()  # cleaned up after success
    resumed_log = lib.training_log(trainer.state.log_history)
    ft_model.unload()
    ft_model, trainer, _ = lib.train_final(model, tokenizer, train, val, CONFIG, settings, tmp_path / "b",
                                           checkpoint_minutes=0)
    assert "Resuming" not in capsys.readouterr().out
    resumed, straight = adapter_weights(tmp_path / "a"), adapter_weights(tmp_path / "b")
    assert resumed.keys() == straight.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-4, atol=1e-6)
    straight_log = lib.training_log(trainer.state.log_history)
    # Trainer averages a logged training loss over the steps since the last log, which restarts on resume, so
    # only the validation losses (evaluated on the same weights) must agree
    assert resumed_log["step"].tolist() == straight_log["step"].tolist()
    pd.testing.assert_series_equal(resumed_log["eval_loss"], straight_log["eval_loss"], rtol=1e-4)
    ft_model.unload()


def test_rerun_does_not_stack_lora_layers(lib, embedded_model):
    from peft import get_peft_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    model, _ = embedded_model
    lib.remove_lora_layers(model)  # the shared model starts bare whatever an earlier test left on it
    n_params = sum(p.numel() for p in model.parameters())
    get_peft_model(model, lib.lora_config(CONFIG))
    assert any(isinstance(m, BaseTunerLayer) for m in model.modules())
    for _ in range(2):
        lib.remove_lora_layers(model)
        assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
        assert sum(p.numel() for p in model.parameters()) == n_params and not hasattr(model, "peft_config")


def test_training_oom_names_the_setting_to_lower(lib, settings):
    class Trainer:
        def train(self, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(RuntimeError, match=r"max_length.*smoke.*max_length=32") as info:
        lib.train_or_explain(Trainer(), settings)
    assert isinstance(info.value.__cause__, torch.OutOfMemoryError)


def test_halving_batches_retries_after_oom_and_gives_up_at_one(lib):
    sizes = []

    def run(batch):
        sizes.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return list(batch)

    assert sum(lib.in_halving_batches(list(range(10)), 8, run), []) == list(range(10))
    assert sizes[:3] == [8, 4, 2] and set(sizes[3:]) == {2}

    def always(batch):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.raises(torch.OutOfMemoryError):
        lib.in_halving_batches([1, 2, 3], 2, always)


def raise_once(monkeypatch, target, name):
    """Make target.name raise a CUDA out-of-memory error on its first call with more than one row."""
    original, calls = getattr(target, name), []

    def flaky(*args, **kwargs):
        rows = (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).shape[0]
        calls.append(rows)
        if len(calls) == 1 and rows > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, flaky)
    return calls


def test_generation_oom_halves_the_batch_with_the_same_answers(lib, embedded_model, monkeypatch, capsys):
    model, tokenizer = embedded_model
    questions = list(FRAME["question"][:4])
    expected = lib.generate_answers(model, tokenizer, questions, 6, 4)
    calls = raise_once(monkeypatch, model, "generate")
    assert lib.generate_answers(model, tokenizer, questions, 6, 4) == expected
    assert calls == [4, 2, 2] and "retrying with batch size 2" in capsys.readouterr().out


def test_perplexity_oom_halves_the_batch_with_the_same_nll(lib, embedded_model, monkeypatch):
    model, tokenizer = embedded_model
    nll, count = lib.answer_nll(model, tokenizer, FRAME, batch_size=4)
    calls = raise_once(monkeypatch, model, "forward")
    again, again_count = lib.answer_nll(model, tokenizer, FRAME, batch_size=4)
    assert again_count == count and again == pytest.approx(nll, rel=1e-5)
    assert calls[:3] == [4, 2, 2]


def test_persist_dir_holds_the_results_folder(lib):
    assert lib.PARAM_DEFAULTS["PERSIST_DIR"] is None
    assert str(lib.resolve_results_dir("results", None)) == "results"
    assert str(lib.resolve_results_dir("results", "/content/drive/MyDrive/medllm")) == \
        "/content/drive/MyDrive/medllm/results"
    assert str(lib.resolve_results_dir("/tmp/out/run1", "/data/keep")) == "/data/keep/run1"
    params = lib.apply_env_overrides(dict(lib.PARAM_DEFAULTS), {"MEDLLM_PERSIST_DIR": "/data/keep"})
    assert lib.build_run_settings(params, CPU)["persist_dir"] == "/data/keep"


def test_drive_is_mounted_only_when_persist_dir_points_there(lib):
    mounted = []
    assert not lib.mount_drive_if_needed(None, True, mounted.append)
    assert not lib.mount_drive_if_needed("/content/keep", True, mounted.append)
    assert mounted == []
    assert lib.mount_drive_if_needed("/content/drive/MyDrive/medllm", True, mounted.append)
    assert mounted == ["/content/drive"]
    with pytest.raises(ValueError, match="only Colab can mount"):
        lib.mount_drive_if_needed("/content/drive/MyDrive/medllm", False, mounted.append)


def test_start_run_removes_the_previous_outputs_but_keeps_reusable_work(lib, tmp_path):
    (tmp_path / "notes.txt").write_text("not ours")
    (tmp_path / "metrics").mkdir()
    first = lib.start_run(tmp_path, profile="cpu")
    assert (tmp_path / "metrics").exists()  # a folder this notebook never wrote is left alone
    for name in ("metrics/old.csv", "visualizations/old.png", "experiments/runs/a.json", "checkpoints/x/f",
                 "models/final_adapter/adapter_config.json", "experiments/experiment_tracking.csv",
                 "models/merged/config.json", "models/gguf/model-q8_0.gguf", "space/app.py", "REPORT.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("old")
    lib.update_run_config(tmp_path, model_path="/old/profile/model")
    second = lib.start_run(tmp_path, profile="smoke")
    assert second["run_id"] != first["run_id"] and "model_path" not in second
    assert json.loads((tmp_path / "run_config.json").read_text()) == second
    assert not (tmp_path / "metrics").exists() and not (tmp_path / "visualizations").exists()
    assert not (tmp_path / "experiments" / "experiment_tracking.csv").exists()
    for export in ("models/merged", "models/gguf", "space", "REPORT.html"):  # else the Hub step would upload them
        assert not (tmp_path / export).exists()
    for kept in ("notes.txt", "experiments/runs/a.json", "checkpoints/x/f", "models/final_adapter/adapter_config.json"):
        assert (tmp_path / kept).exists()
