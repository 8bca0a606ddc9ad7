"""The committed reference run (results/reference-cpu-wikidoc/): labelled, free of weights and data text, and its
REPORT.md agrees number by number with the committed JSON/CSV files."""

import json

import pandas as pd
import pytest

from conftest import ROOT
from reference_check import report_mismatches

REFERENCE = ROOT / "results" / "reference-cpu-wikidoc"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(), reason="the reference run is not committed yet: run "
                                "`bash bench/reference_run.sh` alone on the machine (issue 13)")
REQUIRED = ["REPORT.md", "run_config.json", "submission_checklist.md", "submission_checklist.json",
            "executed_notebook.ipynb", "metrics/evaluation_scores.json", "metrics/evaluation_results.csv",
            "metrics/run_hyperparameters.json", "metrics/knowledge_eval.json", "metrics/predictions.csv",
            "metrics/training_log.csv", "metrics/data_statistics.csv", "experiments/experiment_tracking.csv",
            "models/final_adapter/README.md", "visualizations/evaluation_comparison.png"]


@pytest.mark.notorch
def test_reference_run_is_complete():
    missing = [name for name in REQUIRED if not (REFERENCE / name).is_file()]
    assert missing == []


def test_report_numbers_equal_the_committed_files(lib):
    assert report_mismatches(lib, REFERENCE) == []


@pytest.mark.notorch
def test_report_says_what_run_it_is():
    config = json.loads((REFERENCE / "run_config.json").read_text())
    head = (REFERENCE / "REPORT.md").read_text().split("\n\n")[1]
    assert config["profile"] == "cpu" and config["device"] != "cuda" and "wikidoc" in config["dataset"]
    assert f"Profile `{config['profile']}`" in head and config["model_id"] in head
    assert config["started_at"] in head and "**a CPU run, not a T4/GPU run**" in head


@pytest.mark.notorch
def test_no_weights_no_big_files_no_data_columns():
    files = [p for p in REFERENCE.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".safetensors", ".bin", ".pt"} or p.name == "tokenizer.json"]
    assert max(p.stat().st_size for p in files) < 1_000_000
    predictions = pd.read_csv(REFERENCE / "metrics" / "predictions.csv")
    assert {"question", "reference"}.isdisjoint(predictions.columns) and len(predictions) > 0
    items = pd.read_csv(REFERENCE / "metrics" / "knowledge_items.csv")
    assert {"question", "options"}.isdisjoint(items.columns)


@pytest.mark.notorch
def test_scores_and_tables_agree():
    scores = json.loads((REFERENCE / "metrics" / "evaluation_scores.json").read_text())
    table = pd.read_csv(REFERENCE / "metrics" / "evaluation_results.csv").set_index("metric")
    for metric in ("bleu", "rouge1", "rouge2", "rougeL", "perplexity"):
        assert table.loc[metric, "base"] == pytest.approx(scores["base"][metric])
        assert table.loc[metric, "fine_tuned"] == pytest.approx(scores["fine_tuned"][metric])
    predictions = pd.read_csv(REFERENCE / "metrics" / "predictions.csv")
    assert len(predictions) == scores["n_examples"]
    assert predictions["fine_tuned_rougeL"].mean() == pytest.approx(scores["fine_tuned"]["rougeL"])
    experiments = pd.read_csv(REFERENCE / "experiments" / "experiment_tracking.csv")
    assert len(experiments) == 6 and experiments["selected"].sum() == 1
