"""Print the notebook's shape, so a change can be held against the last one.

Usage:  python tools/notebook_shape.py [NOTEBOOK]   # default: the committed notebook

Visible code is what a reader sees when the notebook opens; folded code is in cells that Colab shows as a form
(`cellView: "form"`) and Jupyter as a collapsed input (`jupyter.source_hidden`), i.e. the embedded package. The
milestones count visible code lines before the first cell that shows a data row, starts training, or builds the UI.
"""

import argparse
import re
import statistics
import sys
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parent.parent / "medical-llm-pipeline-standalone-colab.ipynb"
MILESTONES = {  # the first code cell whose source matches starts each milestone
    "first data row": r"^pairs\.head\(|^raw_df\.head\(",
    "first training": r"run_sweep\(|trainer\.train\(|train_final\(",
    "UI": r"build_ui\(",
}


def folded(cell):
    """Whether a code cell opens folded (a Colab form, or a collapsed input in Jupyter)."""
    meta = cell.get("metadata", {})
    return meta.get("cellView") == "form" or meta.get("jupyter", {}).get("source_hidden", False)


def code_lines(source):
    """Non-blank lines of a cell's source."""
    return [line for line in source.splitlines() if line.strip()]


def shape(path):
    """{measure: value} for one notebook."""
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    visible = [len(code_lines(cell.source)) for cell in code if not folded(cell)]
    hidden = [len(code_lines(cell.source)) for cell in code if folded(cell)]
    result = {
        "cells": len(notebook.cells),
        "markdown cells": len(notebook.cells) - len(code),
        "visible code cells": len(visible),
        "folded code cells": len(hidden),
        "visible code lines": sum(visible),
        "folded code lines": sum(hidden),
        "max visible cell (lines)": max(visible, default=0),
        "median visible cell (lines)": statistics.median(visible) if visible else 0,
        "visible cells over 25 lines": sum(n > 25 for n in visible),
    }
    for name, pattern in MILESTONES.items():
        before, found = 0, None
        for cell in code:
            if not folded(cell) and re.search(pattern, cell.source, re.MULTILINE):
                found = before
                break
            before += 0 if folded(cell) else len(code_lines(cell.source))
        result[f"visible code lines before the {name}"] = found if found is not None else "not found"
    return result


def main():
    """Print the shape of the notebook given (or the committed one)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", nargs="?", default=str(NOTEBOOK))
    args = parser.parse_args()
    for name, value in shape(args.notebook).items():
        print(f"{name:<48} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
