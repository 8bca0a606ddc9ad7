"""Section 7: the rubric checklist (present, fresh, with content), the generated report, model card and timings."""

import datetime as dt
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 2000


def write(path, content):
    """Write text or bytes to path, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)


def experiments_frame():
    """A six-row experiment table as Section 3 writes it."""
    rows = []
    for i, (lr, r) in enumerate([(2e-4, 8), (1e-3, 8), (5e-4, 16), (5e-4, 16), (2e-4, 32), (1e-3, 16)]):
        rows.append({"config": f"cfg{i}", "learning_rate": lr, "lora_r": r, "lora_alpha": 2 * r, "lora_dropout": 0.05,
                     "target_modules": "q_proj,v_proj", "quantization": "none", "max_steps": 4,
                     "train_loss": 3.0 - i / 10, "eval_loss": 3.5 - i / 10 if i != 5 else 2.9,
                     "eval_perplexity": 30.0, "train_seconds": 10.0 + i, "tokens_per_second": 80.0,
                     "peak_memory_mb": 900.0, "trainable_params": 1000 * r, "selected": i == 5})
    return pd.DataFrame(rows)


def make_run(out, lib):
    """A complete results folder whose files all pass the checklist."""
    started = dt.datetime.now() - dt.timedelta(minutes=5)
    write(out / "run_config.json", json.dumps({
        "profile": "smoke", "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "model_source": "embedded",
        "dataset": "/x/data.json", "dataset_source": "local", "device": "AMD EPYC", "dtype": "float32", "seed": 42,
        "versions": {"torch": "2.13"}, "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now().isoformat(timespec="seconds"), "max_new_tokens": 24,
        "max_new_tokens_rule": {"quantile": 0.9, "cap": 24, "uncapped": 57},
        "decoding": {"chosen": "no_repeat_ngram_size=4", "rule": "the lowest loop rate within noise of the best"}}))
    write(out / "metrics" / "split_summary.csv", "split,examples\ntrain,50\nval,6\ntest,4\n")
    write(out / "metrics" / "data_statistics.csv",
          "kind,split,field,characters_count,tokens_mean,tokens_median,tokens_max\n"
          "length,train,question,50,12.5,12,30\ncleaning,all,raw_rows,64,,,\ncleaning,all,dropped_empty,2,,,\n")
    write(out / "experiments" / "experiment_tracking.csv", experiments_frame().to_csv(index=False))
    write(out / "metrics" / "training_log.csv",
          "step,epoch,loss,eval_loss,learning_rate\n1,0.1,3.2,,1e-3\n2,0.2,3.0,2.95,5e-4\n")
    write(out / "metrics" / "run_hyperparameters.json", json.dumps({"config": "cfg5", "learning_rate": 1e-3,
                                                                     "epochs": 1.0, "global_step": 2, "bf16": False,
                                                                     "fp16": False, "max_length": 256}))
    write(out / "models" / "final_adapter" / "adapter_config.json", json.dumps(
        {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["v_proj", "q_proj"]}))
    write(out / "models" / "final_adapter" / "adapter_model.safetensors", b"weights")
    scores = {"n_examples": 4, "n_perplexity_examples": 4,
              "base": {"bleu": 0.01, "rouge1": 0.2, "rouge2": 0.05, "rougeL": 0.1234, "perplexity": 28.0,
                       "mean_words": 50.0},
              "fine_tuned": {"bleu": 0.02, "rouge1": 0.25, "rouge2": 0.07, "rougeL": 0.2345, "perplexity": 14.0,
                             "mean_words": 25.0},
              "ci95": {"bleu": {"diff": 0.01, "low": -0.01, "high": 0.03},
                       "rougeL": {"diff": 0.1111, "low": 0.0222, "high": 0.1999}},
              "win_rate": {"win": 0.75, "tie": 0.0, "loss": 0.25}, "reference_mean_words": 24.0}
    write(out / "metrics" / "evaluation_scores.json", json.dumps(scores))
    knowledge = {"tasks": [{"name": "held-out answers", "status": "ok", "n": 4, "k": 3, "chance": 0.25,
                            "base_accuracy": 0.25, "fine_tuned_accuracy": 0.5,
                            "ci95": {"diff": 0.25, "low": -0.25, "high": 0.75}}]}
    write(out / "metrics" / "knowledge_eval.json", json.dumps(knowledge))
    lib.evaluation_results(scores, knowledge).to_csv(out / "metrics" / "evaluation_results.csv", index=False)
    pd.DataFrame({"question": ["q1", "q2", "q3"], "reference": ["r1", "r2", "r3"],
                  "base_answer": ["b1", "b2", "b3"], "fine_tuned_answer": ["f1", "f2", "f3"],
                  "base_rougeL": [0.1, 0.5, 0.2], "fine_tuned_rougeL": [0.6, 0.1, 0.25],
                  "base_loops": [True, True, False], "fine_tuned_loops": [False, False, False],
                  "base_distinct2": [0.5, 0.6, 1.0], "fine_tuned_distinct2": [1.0, 0.9, 0.8],
                  "base_hit_limit": [True, True, True], "fine_tuned_hit_limit": [False, True, False]}).to_csv(
        out / "metrics" / "predictions.csv", index=False)
    decoding = pd.DataFrame({"setting": ["greedy", "no_repeat_ngram_size=4"], "n": [4, 4], "rougeL": [0.31, 0.29],
                             "rougeL_ci95_low": [0.2, 0.18], "rougeL_ci95_high": [0.4, 0.39], "loop_rate": [0.5, 0.0],
                             "diff_to_best": [0.0, -0.02], "diff_ci95_low": [0.0, -0.08],
                             "diff_ci95_high": [0.0, 0.03], "within_noise": [True, True],
                             "hit_max_new_tokens": [0.75, 0.25], "distinct_2": [0.6, 0.95], "mean_words": [40, 30],
                             "seconds": [12.0, 13.5], "chosen": [False, True]})
    decoding.to_csv(out / "metrics" / "decoding_selection.csv", index=False)
    write(out / "models" / "final_adapter" / "generation_config.json",
          json.dumps({"max_new_tokens": 24, "no_repeat_ngram_size": 4, "do_sample": False}))
    write(out / "metrics" / "ui_status.json", json.dumps({"built": True, "launched": True, "reason": None}))
    for name in ("data_lengths", "experiment_comparison", "training_curves", "evaluation_comparison"):
        write(out / "visualizations" / f"{name}.png", PNG)
    lib.write_model_card(out)
    lib.write_report(out)
    lib.write_report_html(out)
    return out


@pytest.fixture()
def run_dir(tmp_path, lib):
    return make_run(tmp_path / "results", lib)


def failed(sections):
    """{evidence: why} of every failed check."""
    return {c["evidence"]: c["why"] for s in sections for c in s["checks"] if not c["ok"]}


def test_complete_fresh_run_passes_every_section(lib, run_dir):
    sections = lib.rubric_check(run_dir)
    assert [s["section"][:2] for s in sections] == ["1.", "2.", "3.", "4.", "5.", "6.", "7."]
    assert failed(sections) == {}
    assert all(s["ok"] and s["criterion"] for s in sections)


def test_missing_evidence_fails_its_item(lib, run_dir):
    (run_dir / "metrics" / "training_log.csv").unlink()
    sections = lib.rubric_check(run_dir)
    assert failed(sections) == {"metrics/training_log.csv": "missing"}
    assert [s["ok"] for s in sections] == [True, True, True, False, True, True, True]


def test_stale_evidence_fails_its_item(lib, run_dir):
    old = (dt.datetime.now() - dt.timedelta(hours=2)).timestamp()
    os.utime(run_dir / "metrics" / "predictions.csv", (old, old))
    assert failed(lib.rubric_check(run_dir)) == {"metrics/predictions.csv": "stale: written before this run started"}


def test_empty_evidence_fails_its_item(lib, run_dir):
    (run_dir / "visualizations" / "training_curves.png").write_bytes(b"")
    assert failed(lib.rubric_check(run_dir)) == {"visualizations/training_curves.png": "empty"}


def test_wrong_content_fails_with_its_reason(lib, run_dir):
    table = pd.read_csv(run_dir / "experiments" / "experiment_tracking.csv")
    table.head(5).to_csv(run_dir / "experiments" / "experiment_tracking.csv", index=False)
    (run_dir / "metrics" / "ui_status.json").write_text(json.dumps({"built": True, "launched": False,
                                                                    "reason": "LAUNCH_UI is False"}))
    (run_dir / "metrics" / "evaluation_scores.json").write_text("{not json")
    problems = failed(lib.rubric_check(run_dir))
    assert problems["experiments/experiment_tracking.csv"].startswith("needs six rows")
    assert problems["metrics/ui_status.json"] == "LAUNCH_UI is False"
    assert problems["metrics/evaluation_scores.json"].startswith("needs finite")
    assert len(problems) == 3


def test_checklist_files_record_the_result(lib, run_dir):
    (run_dir / "metrics" / "knowledge_eval.json").unlink()
    record = lib.write_checklist(run_dir, lib.rubric_check(run_dir))
    saved = json.loads((run_dir / "submission_checklist.json").read_text())
    assert saved["checks_passed"] == saved["checks_total"] - 1 == record["checks_passed"]
    assert saved["sections_passed"] == 6 and saved["sections_total"] == 7
    assert {d["item"] for d in saved["deliverables"]} >= {"A recorded demo of 5–10 minutes", "The repository link"}
    text = (run_dir / "submission_checklist.md").read_text()
    assert f"{saved['checks_passed']}/{saved['checks_total']} evidence checks passed" in text
    assert "| ✗ | `metrics/knowledge_eval.json` | missing |" in text
    assert text.count("| ✓ |") == saved["checks_passed"]
    assert "## Demo guide" in text and "`cfg5` won on validation loss" in text


def test_report_numbers_come_from_the_files(lib, run_dir):
    report = (run_dir / "REPORT.md").read_text()
    assert report == lib.build_report(run_dir)
    assert "**a CPU run, not a T4/GPU run**" in report and "`smoke` profile" in report
    assert "| rougeL | 0.1234 | 0.2345 | 0.1111 | 0.9003 | 0.0222 | 0.1999 | 4 |" in report
    assert "ROUGE-L difference +0.1111, 95 % CI [+0.0222, +0.1999]: the interval excludes zero" in report
    assert "| accuracy (held-out answers) | 0.25 | 0.5 | 0.25 | 1 | -0.25 | 0.75 | 4 |" in report
    assert "**cfg5** had the lowest validation loss, 2.9000" in report
    for plot in ("data_lengths", "experiment_comparison", "training_curves", "evaluation_comparison"):
        assert f"(visualizations/{plot}.png)" in report
    assert "**helped most** — ROUGE-L base 0.100, fine-tuned 0.600" in report
    assert "**hurt most** — ROUGE-L base 0.500, fine-tuned 0.100" in report


def test_report_reads_loops_and_the_decoding_choice_from_the_files(lib, run_dir):
    report = (run_dir / "REPORT.md").read_text()
    assert "answered by both models (decoding `no_repeat_ngram_size=4`, chosen on the validation split" in report
    assert "### Degeneration: loops and cut-off answers" in report
    assert "base 2 of 3 (67 %), fine-tuned 0 of 3 (0 %)" in report
    assert "Cut off at `max_new_tokens` = 24: base 3 of 3 (100 %), fine-tuned 1 of 3 (33 %)" in report
    assert "the 90 % quantile of the training answers' length in tokens plus the end-of-turn token (57), capped at 24" \
        in report
    assert "### Decoding, chosen on the validation split" in report
    assert "| no_repeat_ngram_size=4 | 0.29 | 0.18 | 0.39 | -0.08 | 0.03 | yes | 0 | 0.25 |" in report
    assert ("On 4 validation questions answered by the fine-tuned model, **no_repeat_ngram_size=4** was chosen: loop "
            "rate 0 % (greedy: 50 %), ROUGE-L 0.290 (95 % CI [0.180, 0.390]). The comparison took 26 s") in report
    assert "Rule, fixed before the run: the lowest loop rate within noise of the best." in report
    card = (run_dir / "models" / "final_adapter" / "README.md").read_text()
    assert "**Decoding:** `no_repeat_ngram_size=4`, chosen on the validation split, at most 24 new tokens" in card


def test_a_run_without_the_new_measures_reports_none_of_them(lib, run_dir):
    (run_dir / "metrics" / "decoding_selection.csv").unlink()
    predictions = pd.read_csv(run_dir / "metrics" / "predictions.csv")
    predictions[["question", "reference", "base_answer", "fine_tuned_answer", "base_rougeL",
                 "fine_tuned_rougeL"]].to_csv(run_dir / "metrics" / "predictions.csv", index=False)
    report = lib.build_report(run_dir)
    assert "(greedy decoding, same prompt)" in report
    assert "Degeneration" not in report and "### Decoding" not in report
    assert failed(lib.rubric_check(run_dir)) == {"metrics/decoding_selection.csv": "missing"}


def test_examples_cite_quoted_data_and_survive_without_its_text(lib, run_dir):
    config = json.loads((run_dir / "run_config.json").read_text())
    config["dataset"] = "/shared/data/medical_meadow_wikidoc_patient_information.json"
    (run_dir / "run_config.json").write_text(json.dumps(config))
    report = lib.build_report(run_dir)
    assert "licensed CC BY-SA" in report and "- *Question:* q1" in report
    predictions = pd.read_csv(run_dir / "metrics" / "predictions.csv")
    predictions.drop(columns=["question", "reference"]).to_csv(run_dir / "metrics" / "predictions.csv", index=False)
    stripped = lib.build_report(run_dir)
    assert "- *Question:*" not in stripped and "- *Base:* b1" in stripped
    assert "**helped most** — ROUGE-L base 0.100, fine-tuned 0.600" in stripped


def test_report_says_what_was_not_obtained(lib, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    report = lib.build_report(out)
    assert "Not obtained: the evaluation files are missing." in report
    assert "Not obtained: `metrics/knowledge_eval.json` is missing." in report
    assert not re.search(r"\bXX\b|TODO|TBD", report)


def test_experiment_findings_are_generated_from_the_table(lib):
    table = experiments_frame()
    text = lib.experiment_findings(table)
    assert text.startswith("**cfg5** had the lowest validation loss, 2.9000")
    assert "0.2000 below the runner-up cfg4" in text and "0.6000 below the last, cfg0" in text
    assert "only 4 optimizer steps" in text and "highest learning rate" in text
    table.loc[5, "learning_rate"] = 1e-5
    assert "highest learning rate" not in lib.experiment_findings(table)


def test_model_card_states_base_model_scores_and_disclaimer(lib, run_dir):
    card = (run_dir / "models" / "final_adapter" / "README.md").read_text()
    assert card.startswith("---\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\nlibrary_name: peft\n")
    assert "Not medical advice" in card and "r=16, alpha=32" in card and "modules q_proj, v_proj" in card
    assert "| rougeL | 0.1234 | 0.2345 |" in card and "train 50, val 6, test 4" in card


def test_section_timings(lib, tmp_path):
    lib.mark_section(tmp_path, "Set-up", now=100.0, reset=True)
    lib.mark_section(tmp_path, "2. Data pipeline", now=130.0)
    lib.mark_section(tmp_path, "3. LoRA experiments", now=200.0)
    lib.mark_section(tmp_path, "2. Data pipeline", now=140.0)  # the section's cell was run again
    sections = lib.close_timings(tmp_path, now=260.0)
    assert sections == [{"section": "Set-up", "seconds": 40.0}, {"section": "2. Data pipeline", "seconds": 60.0},
                        {"section": "3. LoRA experiments", "seconds": 60.0}]
    lib.mark_section(tmp_path, "Set-up", now=500.0, reset=True)
    assert lib.close_timings(tmp_path, now=501.0) == [{"section": "Set-up", "seconds": 1.0}]


def test_hyperparameters_record_holds_what_training_used(lib, tmp_path):
    settings = {"grad_accum": 2, "max_length": 256, "bf16": False, "fp16": False, "seed": 7}
    args = lib.sft_config(settings, tmp_path, 1e-3, epochs=2.0)
    state = type("State", (), {"global_step": 10, "max_steps": 10, "num_input_tokens_seen": 5120})()
    config = {"config": "r16-all", "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
              "target_modules": ["q_proj", "v_proj"], "quantization": "none"}
    record = lib.hyperparameters_record(args, config, state, runtime_s=12.5)
    assert record["learning_rate"] == 1e-3 and record["epochs"] == 2.0 and record["seed"] == 7
    assert record["effective_rows_per_step"] == 2 and record["trained_tokens"] == 5120
    assert record["sft_config"]["max_length"] == 256 and record["completion_only_loss"] is True
    json.dumps(record)


def test_demo_guide_walks_through_this_run(lib, run_dir):
    guide = lib.demo_guide(run_dir)
    assert "`cfg5` won on validation loss" in guide and "ROUGE-L +0.111 (95 % CI [+0.022, +0.200])" in guide
    minutes = [int(m) for m in re.findall(r"\| \d+:\d+–(\d+):\d+ \|", guide)]
    assert 5 <= minutes[-1] <= 10


def test_ui_status_records_launch(lib, tmp_path):
    assert lib.write_ui_status(tmp_path, None, False)["reason"] == "LAUNCH_UI is False"
    record = lib.write_ui_status(tmp_path, "http://127.0.0.1:7860/", True)
    assert record == json.loads((tmp_path / "metrics" / "ui_status.json").read_text())
    assert record["launched"] and record["local"] and record["reason"] is None
    assert Path(tmp_path / "metrics" / "ui_status.json").exists()
