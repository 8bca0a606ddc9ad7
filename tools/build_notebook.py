"""Assemble the notebook from its story (nb/*.py, jupytext percent format) and the medllm package.

Usage:  python tools/build_notebook.py          # write medical-llm-pipeline-standalone-colab.ipynb
        python tools/build_notebook.py --check  # exit 1 if the notebook (or install.py's list) is out of date

Edit nb/*.py and medllm/*.py, never the .ipynb by hand: the notebook is generated, without outputs.
- A cell tagged `package` in nb/ (`# package: data`) becomes one folded form cell per module it names (Colab:
  `cellView: "form"`; Jupyter: a collapsed input), each writing its module next to the notebook, so uploading only
  the .ipynb works. Each section places the modules it imports first, just before its imports.
- A markdown line `<!-- source: medllm.MODULE.NAME -->` becomes that function's source, so a definition a student
  should read is in view while the package stays its only copy.
- The `parameters` cell is written from PARAMETERS in medllm/settings.py: the parameters are declared once.
- medllm/install.py's REQUIREMENTS list is filled in from requirements.txt (the lines above its "headless runner"
  marker), so the version ranges live in one file and --check fails when the package's copy differs.
"""

import argparse
import json
import ast
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"
PACKAGE = ROOT / "medllm"
REQUIREMENTS = ROOT / "requirements.txt"
RUNNER_MARKER = "# --- headless runner"
LIST_OPENING = "REQUIREMENTS = [  # generated from requirements.txt"
SOURCE_MARKER = re.compile(r"^<!-- source: medllm\.(\w+)\.(\w+) -->$", re.MULTILINE)
METADATA = {
    "accelerator": "GPU",
    "colab": {"gpuType": "T4", "provenance": [], "toc_visible": True},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}
WRITER = '''# @title The `medllm` package: each section's folded cells write the modules it uses next to this notebook
def write_module(name, source):
    """Write medllm/NAME from this notebook's copy; in the project's own checkout, medllm/ is the source and stays."""
    import importlib
    import sys
    from pathlib import Path

    path, text = Path("medllm") / name, source.removeprefix("\\n")
    if Path("tools/build_notebook.py").exists() and path.exists():
        if path.read_text() != text:
            print(f"Using the project's {path}: it differs from this notebook's copy (rebuild the notebook).")
        return
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    importlib.invalidate_caches()
    if f"medllm.{path.stem}" in sys.modules:
        print(f"⚠️  {path} changed after it was imported: Runtime → Restart session, then Run all.")
'''


def notebook_requirements(path=REQUIREMENTS):
    """The requirement specifiers the notebook installs: requirements.txt's lines above the runner marker."""
    lines = Path(path).read_text().split(RUNNER_MARKER, 1)[0].splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def embed_requirements(source, requirements):
    """The module source with its REQUIREMENTS list filled in (unchanged when it has no such list)."""
    lines = source.splitlines()
    if not any(line.startswith(LIST_OPENING) for line in lines):
        return source
    start = next(i for i, line in enumerate(lines) if line.startswith(LIST_OPENING))
    end = next(i for i in range(start, len(lines)) if lines[i] == "]")
    body = [f"    {spec!r}," for spec in requirements]
    return "\n".join(lines[:start + 1] + body + lines[end:]) + "\n"


def literal(value):
    """A parameter's default as Python source, strings in double quotes."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def parameters_cell():
    """The notebook's parameters cell, written from PARAMETERS in medllm/settings.py (read, not imported)."""
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    declared = next(ast.literal_eval(node.value) for node in tree.body
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "PARAMETERS")
    lines = [f"{name} = {literal(default)}  # {comment}" for name, default, comment in declared]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["parameters"]
    return cell


def module_summary(source):
    """The first line of a module's docstring."""
    return (ast.get_docstring(ast.parse(source)) or "").splitlines()[0]


def form_cell(name, source):
    """One folded cell that writes medllm/NAME.py (Colab shows its title, Jupyter a collapsed input)."""
    if "'''" in source:
        raise ValueError(f"medllm/{name}.py contains ''': the notebook embeds each module in r'''...'''")
    title, words = f"# @title medllm/{name}.py:", module_summary(source).rstrip(".").split()
    while words and len(title) + 1 + len(words[0]) <= 116:
        title += " " + words.pop(0)
    title += " …" if words else ""
    return nbformat.v4.new_code_cell(f"{title}\nwrite_module(\"{name}.py\", r'''\n{source}''')")


def package_modules():
    """__init__, then the run order that medllm/__init__.py declares (MODULES); every module file must be in it."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    modules = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "MODULES")
    missing = sorted({p.stem for p in PACKAGE.glob("*.py")} - {"__init__", *modules})
    if missing:
        raise SystemExit(f"medllm/{missing[0]}.py is not in MODULES of medllm/__init__.py: add it there.")
    return ["__init__", *modules]


def package_cells(names, first):
    """One form cell per named module (after the writer when `first`): each section writes what it imports."""
    cells = []
    if first:
        cells.append(nbformat.v4.new_code_cell(WRITER))
    cells += [form_cell(name, (PACKAGE / f"{name}.py").read_text()) for name in names]
    for cell in cells:
        cell.metadata.update({"cellView": "form", "jupyter": {"source_hidden": True}, "tags": ["package"]})
    return cells


def function_source(module, name):
    """The source of medllm/MODULE.py's top-level definition NAME (read, not imported: no torch needed)."""
    source = (PACKAGE / f"{module}.py").read_text()
    for node in ast.parse(source).body:
        if getattr(node, "name", None) == name:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            return "\n".join(source.splitlines()[start - 1:node.end_lineno])
    raise SystemExit(f"nb/: <!-- source: medllm.{module}.{name} --> names no definition in medllm/{module}.py")


def expand_sources(markdown):
    """A markdown cell with each source marker replaced by the definition it names, as a Python code block."""
    return SOURCE_MARKER.sub(lambda m: f"From `medllm/{m.group(1)}.py`:\n\n```python\n"
                             f"{function_source(m.group(1), m.group(2))}\n```", markdown)


def build():
    """The story cells with the package folded in, as one output-free notebook."""
    cells, placed = [], []
    for source in sorted((ROOT / "nb").glob("[0-9][0-9]_*.py")):
        for cell in jupytext.read(source, fmt="py:percent").cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code" and "package" in tags:
                names = cell.source.removeprefix("# package:").split()
                cells.extend(package_cells(names, first=not placed))
                placed += names
            elif cell.cell_type == "code" and "parameters" in tags:
                cells.append(parameters_cell())
            elif cell.cell_type == "code":
                cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags} if tags else {}))
            else:
                cells.append(nbformat.v4.new_markdown_cell(expand_sources(cell.source)))
    if placed != package_modules():
        raise SystemExit(f"nb/'s `# package:` cells place {placed}; they must place each module of medllm/ once, in "
                         f"the order of MODULES in medllm/__init__.py: {package_modules()}")
    notebook = nbformat.v4.new_notebook(metadata=METADATA)
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index:03d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def main():
    """Fill install.py's list and write the notebook, or with --check compare both with what is committed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the notebook differs from nb/ and medllm/")
    args = parser.parse_args()
    install = PACKAGE / "install.py"
    wanted = embed_requirements(install.read_text(), notebook_requirements())
    if args.check and wanted != install.read_text():
        print("medllm/install.py's REQUIREMENTS differ from requirements.txt: run python tools/build_notebook.py",
              file=sys.stderr)
        return 1
    install.write_text(wanted)
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
