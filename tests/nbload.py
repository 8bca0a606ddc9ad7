"""Load the notebook's `lib` cells (imports and definitions, no side effects) into a module."""

import types
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"


def lib_source(path=NOTEBOOK):
    """The source of every code cell tagged `lib`, in notebook order."""
    notebook = nbformat.read(path, as_version=4)
    return [c.source for c in notebook.cells if c.cell_type == "code" and "lib" in c.metadata.get("tags", [])]


def load_lib(path=NOTEBOOK):
    """Execute the `lib` cells into a fresh module and return it."""
    module = types.ModuleType("medllm_lib")
    module.__dict__["__name__"] = "medllm_lib"
    for index, source in enumerate(lib_source(path)):
        exec(compile(source, f"<lib cell {index}>", "exec"), module.__dict__)
    return module
