"""Copy a finished run into a folder that can be committed: no weights, no tokenizer, nothing over 1 MB, and no
column that quotes the data's text. The run's REPORT.md is kept as written; the copy is then checked with the
same test the suite runs (the report's numbers equal those regenerated from the copied files).

Usage: python bench/publish_run.py RUN_DIR DEST_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import medllm  # noqa: E402
from reference_check import report_mismatches  # noqa: E402

KEEP_SUFFIXES = {".csv", ".json", ".png", ".md", ".ipynb", ".html"}
SKIP_PARTS = {"checkpoints", "merged", "gguf", "space"}  # exports: weights, or copies of the adapter
SKIP_NAMES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}
TEXT_COLUMNS = {"metrics/predictions.csv": ["question", "reference"],
                "metrics/knowledge_items.csv": ["question", "correct_answer", "options", "candidates", "choices"]}
LIMIT = 1_000_000


REMOVED = ("[Output removed from the committed copy: it quotes the data set's text ({name}, {licence}). "
           "REPORT.md quotes three attributed examples.]")


def data_texts(dataset, probe=30):
    """The first `probe` characters of every question and answer in the run's data file (tables truncate long
    text, so a quote is found by its start)."""
    rows = json.loads(Path(dataset).read_text())
    keys = ("input", "output", "question", "answer")
    texts = (" ".join(str(row.get(key, "")).split()) for row in rows for key in keys)
    return {text[:probe] for text in texts if len(text) > probe}


def output_text(output):
    """The text of one notebook output (stream, result or display), whitespace collapsed."""
    parts = [output.get("text", "")] + [str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
    return " ".join(" ".join(parts).split())


def strip_quoting_outputs(notebook_path, texts, name, licence):
    """Replace every output of the executed notebook that quotes the data's text with a note; return the count."""
    notebook = nbformat.read(notebook_path, as_version=4)
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for index, output in enumerate(cell.get("outputs", [])):
            text = output_text(output)
            if any(t in text for t in texts):
                cell.outputs[index] = nbformat.v4.new_output("stream", name="stdout",
                                                            text=REMOVED.format(name=name, licence=licence) + "\n")
                removed += 1
    nbformat.write(notebook, notebook_path)
    return removed


def drop_images(notebook_path, target):
    """Copy the executed notebook without its inline PNGs (each plot is committed under visualizations/)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                output["data"].pop("image/png")
                output["data"]["text/plain"] = "[plot omitted in the committed copy: see visualizations/]"
    nbformat.write(notebook, target)


def publish(run, dest):
    """Copy the run's publishable files from run to dest (replacing dest); return the copied paths."""
    run, dest = Path(run), Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    copied = []
    for path in sorted(run.rglob("*")):
        relative = path.relative_to(run)
        if (not path.is_file() or path.suffix not in KEEP_SUFFIXES or path.name in SKIP_NAMES
                or SKIP_PARTS & set(relative.parts)):
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        columns = TEXT_COLUMNS.get(relative.as_posix())
        if columns:
            frame = pd.read_csv(path)
            frame.drop(columns=[c for c in columns if c in frame.columns]).to_csv(target, index=False)
        elif path.name == "executed_notebook.ipynb":
            drop_images(path, target)
        else:
            shutil.copy2(path, target)
        if target.stat().st_size > LIMIT:
            raise SystemExit(f"{relative} is {target.stat().st_size:,} bytes, over the 1 MB limit for committed runs")
        copied.append(relative.as_posix())
    return copied


def main():
    """Publish RUN_DIR to DEST_DIR and check the report against the copied files."""
    run, dest = sys.argv[1:3]
    copied = publish(run, dest)
    config = json.loads((Path(run) / "run_config.json").read_text())
    executed = Path(dest) / "executed_notebook.ipynb"
    if executed.exists() and config.get("dataset_source") == "local":
        removed = strip_quoting_outputs(executed, data_texts(config["dataset"]), Path(config["dataset"]).name,
                                        "CC BY-SA")
        print(f"removed {removed} notebook outputs that quote the data's text")
    problems = report_mismatches(medllm.namespace(), Path(dest))
    if problems:
        raise SystemExit("REPORT.md does not match the copied files:\n" + "\n".join(problems))
    print(f"published {len(copied)} files to {dest}; REPORT.md matches them")


if __name__ == "__main__":
    main()
