"""Load the notebook's `lib` cells (imports and definitions, no side effects) into a module."""

import types
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"


def lib_source(path=NOTEBOOK, tag="lib"):
    """The source of every code cell tagged `tag` (default `lib`), in notebook order."""
    notebook = nbformat.read(path, as_version=4)
    return [c.source for c in notebook.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def load_lib(path=NOTEBOOK, tag="lib"):
    """Execute the cells tagged `tag` into a fresh module and return it (tag "install": the torch-free install step)."""
    module = types.ModuleType("medllm_lib")
    module.__dict__["__name__"] = "medllm_lib"
    for index, source in enumerate(lib_source(path, tag)):
        exec(compile(source, f"<lib cell {index}>", "exec"), module.__dict__)
    return module
