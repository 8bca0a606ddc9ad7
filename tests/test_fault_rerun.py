"""Fault injection on the whole notebook (smoke profile): a run killed in Section 4 resumes on rerun and finishes,
a truncated checkpoint is skipped with its message, and Run all twice in one kernel gives identical outputs."""

import json
import os
import subprocess
import sys

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"
FAULT_STEP = 4  # checkpoints every step (MEDLLM_CHECKPOINT_MINUTES=0): 2 and 3 exist when step 4 kills the kernel
VOLATILE = {"run_id", "started_at", "finished_at", "train_seconds", "tokens_per_second", "peak_memory_mb",
            "resident_weights_mb", "seconds", "train_runtime_s"}
TIMED_FILES = {"metrics/section_timings.json", "REPORT.md", "submission_checklist.md"}  # wall times, dates: compared
# through the files they are generated from (the checklist through submission_checklist.json)


def without_volatile(value):
    """A JSON value with every volatile key removed at any depth."""
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    return value


def smoke_env(results, **extra):
    """The environment of a cheap smoke run into `results` (no UI, a checkpoint at every step)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLLM_")}
    env.update(MEDLLM_PROFILE="smoke", MEDLLM_LAUNCH_UI="False", MEDLLM_RESULTS_DIR=str(results),
               MEDLLM_CHECKPOINT_MINUTES="0", **extra)
    return env


def papermill_run(results, executed, **extra):
    """Run the notebook headless in a subprocess; return the completed process."""
    command = [sys.executable, "-m", "papermill", str(NOTEBOOK), str(executed), "--cwd", str(ROOT), "-k", "python3"]
    return subprocess.run(command, env=smoke_env(results, **extra), capture_output=True, text=True, timeout=1800)


def printed(notebook):
    """All stream text the notebook's cells printed."""
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code"
                   for o in c.get("outputs", []) if o.output_type == "stream")


def snapshot(results):
    """Every CSV/JSON/Markdown output as comparable data (volatile fields removed), plus the list of all files."""
    files = sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
    data = {}
    for name in files:
        path = results / name
        if name in TIMED_FILES:
            continue
        if path.suffix == ".csv":
            frame = pd.read_csv(path).drop(columns=list(VOLATILE), errors="ignore")
            data[name] = frame.astype(object).where(frame.notna(), None).to_dict("list")  # NaN != NaN
        elif path.suffix == ".json":
            data[name] = without_volatile(json.loads(path.read_text()))
        elif path.suffix == ".md":
            data[name] = path.read_text()
    return files, data


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Kill a smoke run in Section 4, damage its newest checkpoint, rerun it; then Run all twice in one kernel."""
    base = tmp_path_factory.mktemp("fault")
    results = base / "results"
    killed = papermill_run(results, base / "killed.ipynb", MEDLLM_FAULT_AFTER_STEP=str(FAULT_STEP),
                           MEDLLM_CALLBACKS="fault_hook:FaultAfterStep", PYTHONPATH=str(ROOT / "tests"))
    checkpoints = sorted(results.glob("checkpoints/*/checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert checkpoints, f"the killed run left no checkpoint:\n{killed.stderr[-3000:]}"
    after_kill = {"returncode": killed.returncode, "checkpoints": [p.name for p in checkpoints],
                  "adapter": (results / "models" / "final_adapter").exists()}
    (checkpoints[-1] / "trainer_state.json").write_text('{"global_step": 3, "log_hist')  # truncated mid-write
    resumed = papermill_run(results, base / "resumed.ipynb")
    after_resume = {"returncode": resumed.returncode, "stderr": resumed.stderr[-3000:],
                    "printed": printed(nbformat.read(base / "resumed.ipynb", as_version=4)),
                    "snapshot": snapshot(results)}
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    twice = []
    with client.setup_kernel(env=smoke_env(results)):
        for _ in range(2):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
            twice.append(snapshot(results))
    return after_kill, after_resume, twice


def test_killed_run_left_complete_checkpoints_and_no_adapter(story):
    after_kill, _, _ = story
    assert after_kill["returncode"] != 0
    assert after_kill["checkpoints"] == [f"checkpoint-{FAULT_STEP - 2}", f"checkpoint-{FAULT_STEP - 1}"]
    assert not after_kill["adapter"]


def test_rerun_skips_the_truncated_checkpoint_and_resumes(story):
    _, after_resume, _ = story
    assert after_resume["returncode"] == 0, after_resume["stderr"]
    out = after_resume["printed"]
    assert f"checkpoint-{FAULT_STEP - 1}: corrupt: trainer_state.json" in out
    assert "Resuming the final training from" in out and f"checkpoint-{FAULT_STEP - 2}" in out


def test_resumed_run_finishes_with_complete_outputs(story):
    _, after_resume, _ = story
    files, data = after_resume["snapshot"]
    assert not any(name.startswith("checkpoints/") for name in files)  # removed after success
    for name in ("models/final_adapter/adapter_model.safetensors", "metrics/training_log.csv",
                 "metrics/evaluation_scores.json", "metrics/predictions.csv", "visualizations/training_curves.png"):
        assert name in files
    failed = {c["evidence"]: c["why"] for section in data["submission_checklist.json"]["sections"]
              for c in section["checks"] if not c["ok"]}
    assert failed == {"metrics/ui_status.json": "LAUNCH_UI is False"}  # the one item a run without the UI can't meet
    log = pd.DataFrame(data["metrics/training_log.csv"])
    assert log["step"].max() > FAULT_STEP and log["loss"].notna().any()


def test_run_all_twice_in_one_kernel_gives_identical_outputs(story):
    _, after_resume, (first, second) = story
    assert first[0] == second[0] == after_resume["snapshot"][0]  # same files: nothing stale, nothing missing
    for name in first[1]:
        assert first[1][name] == second[1][name], name
    predictions = pd.DataFrame(second[1]["metrics/predictions.csv"])
    assert predictions["question"].is_unique  # no duplicated rows
    assert first[1]["run_config.json"]["profile"] == "smoke"
