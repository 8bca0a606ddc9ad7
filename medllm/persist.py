"""Where outputs go, the run record (run_config.json), seeds, notices and section timings."""


import datetime as dt
import json
import platform
import random
import secrets
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .settings import DRIVE_ROOT


# The run's record (`run_config.json`) and where it lives: `RESULTS_DIR`, or under `PERSIST_DIR` (Google
# Drive on Colab, mounted only when asked). A new run first removes the previous run's outputs from the
# folder, keeping the finished sweep runs, checkpoints and adapter that a rerun can reuse.
def library_versions():
    """Versions of the libraries that decide the numbers of this run."""
    import peft
    import transformers
    import trl
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "trl": trl.__version__, "python": platform.python_version()}


def update_run_config(folder, **fields):
    """Merge fields into FOLDER/run_config.json and return the whole record."""
    path = Path(folder) / "run_config.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(fields)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return record


def resolve_results_dir(results_dir, persist_dir):
    """Where this run's outputs live: RESULTS_DIR, or PERSIST_DIR/<RESULTS_DIR's name> when PERSIST_DIR is set."""
    if persist_dir is None:
        return Path(results_dir).expanduser()
    return Path(persist_dir).expanduser() / Path(results_dir).name


def mount_drive_if_needed(persist_dir, in_colab, mount=None):
    """Mount Google Drive when PERSIST_DIR points into /content/drive on Colab; refuse it elsewhere."""
    if persist_dir is None or not str(Path(persist_dir).expanduser()).startswith(DRIVE_ROOT + "/"):
        return False
    if not in_colab:
        raise ValueError(f"PERSIST_DIR={persist_dir!r} is on Google Drive, which only Colab can mount. "
                         "Set PERSIST_DIR to a local folder (or None) on this machine.")
    if not Path(DRIVE_ROOT, "MyDrive").is_dir():
        if mount is None:
            from google.colab import drive
            mount = drive.mount
        mount(DRIVE_ROOT)
    return True


STALE_OUTPUTS = ("run_config.json", "metrics", "visualizations", "experiments/experiment_tracking.csv",
                 "submission_checklist.md", "submission_checklist.json", "REPORT.md", "REPORT.html", "space",
                 "models/merged", "models/gguf")  # exports too: the Hub step uploads only what this run made


def start_run(out_dir, **fields):
    """Remove the previous run's outputs (kept: sweep runs, checkpoints, adapter); write a fresh run_config.json."""
    out = Path(out_dir)
    if (out / "run_config.json").exists():  # only a folder this notebook wrote before is cleaned
        for name in STALE_OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    run_id = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    return update_run_config(out, run_id=run_id, **fields)


def seed_everything(seed):
    """Seed Python, NumPy and torch for a repeatable run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def announce(message):
    """Print a fallback or notice so it stands out in the output."""
    print(f"⚠️  {message}")


# Each section records when it starts in `metrics/section_timings.json`, so the report can say where the
# time went. A rerun of a section's first cell replaces its mark instead of adding one.
def timings_path(results_dir):
    """Where the section timings of a run are kept."""
    return Path(results_dir) / "metrics" / "section_timings.json"


def mark_section(results_dir, section, now=None, reset=False):
    """Record that `section` starts now (reset=True starts a new run's timings); return all marks."""
    path = timings_path(results_dir)
    marks = {} if reset or not path.exists() else json.loads(path.read_text()).get("marks", {})
    marks[section] = time.time() if now is None else now
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"marks": marks}, indent=2) + "\n")
    return marks


def close_timings(results_dir, now=None):
    """Turn the start marks into seconds per section (each lasts until the next one starts); return them."""
    path = timings_path(results_dir)
    marks = json.loads(path.read_text()).get("marks", {}) if path.exists() else {}
    ordered = sorted(marks.items(), key=lambda item: item[1])
    ends = [start for _, start in ordered[1:]] + [time.time() if now is None else now]
    sections = [{"section": name, "seconds": round(end - start, 2)} for (name, start), end in zip(ordered, ends)]
    path.write_text(json.dumps({"marks": marks, "sections": sections}, indent=2) + "\n")
    return sections
