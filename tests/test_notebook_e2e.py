"""Run the whole notebook headless with papermill in the smoke profile and check every SPEC output."""

import json
import math
import os

import nbformat
import pandas as pd
import papermill
import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"
SCORE_KEYS = {"bleu", "rouge1", "rouge2", "rougeL", "perplexity"}


FAKE_TOKEN = "hf_FakeSmokeToken" + "9f3c2a7e51d84b06"  # must never show up in any output


@pytest.fixture(scope="module")
def run(tmp_path_factory, lib):
    """Execute the notebook once (smoke profile, fresh RESULTS_DIR, a fake HF_TOKEN); return (results, notebook)."""
    out = tmp_path_factory.mktemp("smoke")
    executed = out / "executed.ipynb"
    env = {"HF_TOKEN": FAKE_TOKEN}
    if lib.hub_reachable():
        env["HF_HUB_OFFLINE"] = "1"  # the hub refuses a fake token even for public files
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the papermill kernel inherits this environment
    try:
        papermill.execute_notebook(str(NOTEBOOK), str(executed), kernel_name="python3", cwd=str(ROOT),
                                   parameters={"PROFILE": "smoke", "RESULTS_DIR": str(out / "results")})
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    return out / "results", nbformat.read(executed, as_version=4)


def test_no_cell_has_error_output(run):
    _, notebook = run
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors


def test_run_config(run):
    results, _ = run
    config = json.loads((results / "run_config.json").read_text())
    assert {"profile", "model_id", "model_source", "dataset", "dataset_source", "device", "dtype", "seed",
            "versions", "started_at", "finished_at"} <= set(config)
    assert config["profile"] == "smoke" and config["finished_at"]
    assert config["model_source"] in {"hub", "embedded", "local"}
    assert config["dataset_source"] in {"hub", "local", "embedded"}
    assert {"torch", "transformers", "peft", "trl"} <= set(config["versions"])


def test_data_outputs(run):
    results, _ = run
    splits = pd.read_csv(results / "metrics" / "split_summary.csv")
    assert list(splits["split"]) == ["train", "val", "test"] and (splits["examples"] > 0).all()
    stats = pd.read_csv(results / "metrics" / "data_statistics.csv")
    assert {"kind", "split", "field"} <= set(stats.columns) and len(stats) > 0


def test_experiment_table_has_six_measured_rows_one_selected(run):
    results, _ = run
    table = pd.read_csv(results / "experiments" / "experiment_tracking.csv")
    required = ["config", "learning_rate", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "quantization",
                "max_steps", "train_loss", "eval_loss", "eval_perplexity", "train_seconds", "peak_memory_mb",
                "trainable_params", "selected"]
    assert set(required) <= set(table.columns)
    assert len(table) == 6 and table["config"].is_unique
    assert int(table["selected"].sum()) == 1
    assert table.loc[table["selected"], "eval_loss"].item() == table["eval_loss"].min()
    numbers = table[["train_loss", "eval_loss", "eval_perplexity", "train_seconds", "peak_memory_mb"]].to_numpy(float)
    assert all(math.isfinite(x) for x in numbers.flat)
    assert (table["train_seconds"] > 0).all() and (table["trainable_params"] > 0).all()


def test_training_log_and_adapter(run):
    results, _ = run
    log = pd.read_csv(results / "metrics" / "training_log.csv")
    assert list(log.columns) == ["step", "epoch", "loss", "eval_loss", "learning_rate"]
    assert log["loss"].notna().any() and log["eval_loss"].notna().any()
    adapter = results / "models" / "final_adapter"
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    assert (adapter / "tokenizer_config.json").exists()
    table = pd.read_csv(results / "experiments" / "experiment_tracking.csv")
    selected = table[table["selected"]].iloc[0]
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == selected["lora_r"] and sorted(config["target_modules"]) == sorted(
        selected["target_modules"].split(","))


def test_evaluation_outputs(run):
    results, _ = run
    scores = json.loads((results / "metrics" / "evaluation_scores.json").read_text())
    assert scores["n_examples"] > 0
    for model in ("base", "fine_tuned"):
        assert SCORE_KEYS <= set(scores[model])
        for key in SCORE_KEYS - {"perplexity"}:
            assert 0.0 <= scores[model][key] <= 1.0
        assert math.isfinite(scores[model]["perplexity"]) and scores[model]["perplexity"] > 1.0
    predictions = pd.read_csv(results / "metrics" / "predictions.csv")
    assert {"question", "reference", "base_answer", "fine_tuned_answer"} <= set(predictions.columns)
    assert len(predictions) == scores["n_examples"]


def test_plots_and_checklist(run):
    results, _ = run
    for name in ("data_lengths", "training_curves", "experiment_comparison", "evaluation_comparison"):
        assert (results / "visualizations" / f"{name}.png").stat().st_size > 1000
    checklist = (results / "submission_checklist.md").read_text()
    assert "✗" not in checklist and checklist.count("✓") >= 12


def test_token_is_never_printed_or_written(run):
    results, notebook = run
    texts = [json.dumps(nbformat.writes(notebook))]
    texts += [path.read_bytes().decode("utf-8", errors="ignore") for path in results.rglob("*") if path.is_file()]
    assert len(texts) > 10 and not any(FAKE_TOKEN in text for text in texts)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("Hugging Face token: found in the environment" in o.get("text", "") for o in outputs)
