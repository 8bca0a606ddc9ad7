"""Copy a finished run into a folder that can be committed: no weights, no tokenizer, nothing over 1 MB, and no
column that quotes the data's text. The run's REPORT.md is kept as written; the copy is then checked with the
same test the suite runs (the report's numbers equal those regenerated from the copied files).

Usage: python bench/publish_run.py RUN_DIR DEST_DIR
"""

import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import nbload  # noqa: E402
from reference_check import report_mismatches  # noqa: E402

KEEP_SUFFIXES = {".csv", ".json", ".png", ".md", ".ipynb"}
SKIP_PARTS = {"checkpoints"}
SKIP_NAMES = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"}
TEXT_COLUMNS = {"metrics/predictions.csv": ["question", "reference"],
                "metrics/knowledge_items.csv": ["question", "correct_answer", "options", "candidates", "choices"]}
LIMIT = 1_000_000


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
    problems = report_mismatches(nbload.load_lib(), Path(dest))
    if problems:
        raise SystemExit("REPORT.md does not match the copied files:\n" + "\n".join(problems))
    print(f"published {len(copied)} files to {dest}; REPORT.md matches them")


if __name__ == "__main__":
    main()
