"""Assemble the notebook from its section sources in nb/*.py (jupytext percent format).

Usage:  python tools/build_notebook.py          # write medical-llm-pipeline-standalone-colab.ipynb
        python tools/build_notebook.py --check  # exit 1 if the committed notebook is out of date

Edit the sources in nb/, never the .ipynb by hand: the notebook is generated, without outputs. The install step's
REQUIREMENTS list is filled in from requirements.txt (the lines above its "headless runner" marker), so the version
ranges live in one place and --check fails when the notebook's copy differs.
"""

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"
REQUIREMENTS = ROOT / "requirements.txt"
RUNNER_MARKER = "# --- headless runner"
LIST_OPENING = "REQUIREMENTS = [  # generated from requirements.txt"
METADATA = {
    "accelerator": "GPU",
    "colab": {"gpuType": "T4", "provenance": [], "toc_visible": True},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def notebook_requirements(path=REQUIREMENTS):
    """The requirement specifiers the notebook installs: requirements.txt's lines above the runner marker."""
    lines = Path(path).read_text().split(RUNNER_MARKER, 1)[0].splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def embed_requirements(source, requirements):
    """The cell source with its REQUIREMENTS list filled in (unchanged when the cell has no such list)."""
    lines = source.splitlines()
    if not any(line.startswith(LIST_OPENING) for line in lines):
        return source
    start = next(i for i, line in enumerate(lines) if line.startswith(LIST_OPENING))
    end = next(i for i in range(start, len(lines)) if lines[i] == "]")
    body = [f"    {spec!r}," for spec in requirements]
    return "\n".join(lines[:start + 1] + body + lines[end:])


def build():
    """Concatenate the section sources into one output-free notebook."""
    cells, requirements = [], notebook_requirements()
    for source in sorted((ROOT / "nb").glob("[0-9][0-9]_*.py")):
        part = jupytext.read(source, fmt="py:percent")
        for cell in part.cells:
            if cell.cell_type == "code":
                cell.source = embed_requirements(cell.source, requirements)
        cells.extend(part.cells)
    notebook = nbformat.v4.new_notebook(metadata=METADATA)
    for index, cell in enumerate(cells):
        metadata = {key: value for key, value in cell.metadata.items() if key == "tags"}
        if cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, metadata=metadata)
        else:
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=metadata)
        new["id"] = f"cell-{index:03d}"
        notebook.cells.append(new)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def main():
    """Write the notebook, or with --check compare it with the committed one."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the notebook differs from nb/*.py")
    args = parser.parse_args()
    text = build()
    if args.check:
        if not NOTEBOOK.exists() or NOTEBOOK.read_text() != text:
            print(f"{NOTEBOOK.name} is out of date: run python tools/build_notebook.py", file=sys.stderr)
            return 1
        print(f"{NOTEBOOK.name} is up to date")
        return 0
    NOTEBOOK.write_text(text)
    print(f"wrote {NOTEBOOK.name} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
