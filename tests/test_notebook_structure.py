"""The notebook reads well cell by cell: title and Sections 1–7 in order, short cells, documented functions."""

import ast
import re

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.notorch  # reads the notebook only: runs under Python 3.13 too

NOTEBOOK = nbformat.read(ROOT / "medical-llm-pipeline-standalone-colab.ipynb", as_version=4)
MAX_CODE_LINES = 80


def headings(level):
    """Markdown headings of one level, in notebook order."""
    marker = "#" * level + " "
    return [line[len(marker):] for cell in NOTEBOOK.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith(marker)]


def test_opens_on_the_title_then_section_one():
    first = NOTEBOOK.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# Medical question answering with LoRA")
    tops = headings(1)
    assert [re.match(r"\d+\.", h).group(0) for h in tops[1:]] == [f"{n}." for n in range(1, 8)]
    assert tops[1].startswith("1. Project definition")


def test_set_up_is_a_marked_step_between_sections_one_and_two():
    order = [line for cell in NOTEBOOK.cells if cell.cell_type == "markdown" for line in cell.source.splitlines()
             if line.startswith("# ") or line.startswith("## Set-up")]
    assert order.index("## Set-up: parameters, installs, device and profile") == 2
    assert order[1].startswith("# 1.") and order[3].startswith("# 2.")


def test_code_cells_are_short():
    long = {index: len(cell.source.splitlines()) for index, cell in enumerate(NOTEBOOK.cells)
            if cell.cell_type == "code" and len(cell.source.splitlines()) > MAX_CODE_LINES}
    assert long == {}


def test_every_lib_function_has_a_one_line_docstring():
    missing = []
    for cell in NOTEBOOK.cells:
        if cell.cell_type != "code" or "lib" not in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                if not ast.get_docstring(node):
                    missing.append(node.name)
    assert missing == []


def test_every_lib_cell_follows_an_explanation():
    bare = [index for index, cell in enumerate(NOTEBOOK.cells[1:], 1)
            if cell.cell_type == "code" and "lib" in cell.metadata.get("tags", [])
            and NOTEBOOK.cells[index - 1].cell_type == "code" and "lib" in NOTEBOOK.cells[index - 1].metadata.get(
                "tags", [])]
    assert bare == []  # each definition cell sits under the markdown that explains it
