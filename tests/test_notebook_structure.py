"""The notebook reads well cell by cell: title and Sections 1–7 in order, short visible cells, the package folded in.

The package (medllm/) is the only copy of the code: the notebook embeds it in folded form cells, and the test below
writes those cells into an empty folder and compares the files with the package, byte for byte.
"""

import ast
import os
import re
import sys

import nbformat
import pytest

from conftest import ROOT

pytestmark = pytest.mark.notorch  # reads the notebook and the sources only: runs under Python 3.13 too

NOTEBOOK = nbformat.read(ROOT / "medical-llm-pipeline-standalone-colab.ipynb", as_version=4)
PACKAGE = ROOT / "medllm"
MAX_VISIBLE_LINES, MAX_VISIBLE_TOTAL, FIRST_DATA_ROW_WITHIN = 25, 600, 150
sys.path.insert(0, str(ROOT / "tools"))
import notebook_shape  # noqa: E402


def headings(level):
    """Markdown headings of one level, in notebook order."""
    marker = "#" * level + " "
    return [line[len(marker):] for cell in NOTEBOOK.cells if cell.cell_type == "markdown"
            for line in cell.source.splitlines() if line.startswith(marker)]


def form_cells():
    """The folded cells that write the package."""
    return [cell for cell in NOTEBOOK.cells if cell.cell_type == "code" and "package" in cell.metadata.get("tags", [])]


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


def test_visible_code_is_short_and_the_data_comes_early():
    shape = notebook_shape.shape(ROOT / "medical-llm-pipeline-standalone-colab.ipynb")
    assert shape["max visible cell (lines)"] <= MAX_VISIBLE_LINES
    assert shape["visible code lines"] <= MAX_VISIBLE_TOTAL
    assert shape["visible code lines before the first data row"] <= FIRST_DATA_ROW_WITHIN


def test_every_module_is_embedded_once_and_folded():
    titles = [cell.source.splitlines()[0] for cell in form_cells()[1:]]
    assert [re.match(r"# @title medllm/(\w+)\.py", t).group(1) for t in titles] == \
        ["__init__"] + sorted({p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}, key=order_of)
    for cell in form_cells():
        assert cell.metadata["cellView"] == "form" and cell.metadata["jupyter"]["source_hidden"] is True
        assert cell.source.startswith("# @title ")


def order_of(name):
    """A module's place in the run order the package declares."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    modules = next(ast.literal_eval(node.value) for node in tree.body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "MODULES")
    return modules.index(name)


def test_the_embedded_copy_is_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not a checkout of the project: the cells write every module
    namespace = {}
    for cell in form_cells():
        exec(compile(cell.source, "<form cell>", "exec"), namespace)
    written = {p.name: p.read_bytes() for p in (tmp_path / "medllm").glob("*.py")}
    assert written == {p.name: p.read_bytes() for p in PACKAGE.glob("*.py")}


def test_in_the_checkout_the_cells_leave_the_package_alone(tmp_path, monkeypatch, capsys):
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "build_notebook.py").write_text("")
    (tmp_path / "medllm").mkdir()
    (tmp_path / "medllm" / "data.py").write_text("# edited by hand\n")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for cell in form_cells():
        exec(compile(cell.source, "<form cell>", "exec"), namespace)
    assert (tmp_path / "medllm" / "data.py").read_text() == "# edited by hand\n"  # nothing a user made is lost
    assert "Using the project's medllm/data.py: it differs from this notebook's copy" in capsys.readouterr().out


def test_every_package_function_has_a_one_line_docstring():
    missing = [f"{path.name}:{node.name}" for path in sorted(PACKAGE.glob("*.py"))
               for node in ast.walk(ast.parse(path.read_text()))
               if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not ast.get_docstring(node)]
    assert missing == []


def test_no_module_imports_another_modules_private_names():
    private = [f"{path.name}: {alias.name}" for path in sorted(PACKAGE.glob("*.py"))
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom) and node.level
               for alias in node.names if alias.name.startswith("_")]
    assert private == []


def test_tools_bench_and_scripts_depend_on_the_package_not_on_tests():
    code_from_tests = re.compile(r'import nbload|sys\.path\.insert\(.*"tests"|^from (conftest|test_\w+) import', re.M)
    users = [path.relative_to(ROOT).as_posix() for folder in ("tools", "bench", "scripts")
             for path in (ROOT / folder).rglob("*.py") if code_from_tests.search(path.read_text())]
    assert users == []


def test_the_notebook_has_no_test_hooks():
    source = "\n".join(cell.source for cell in NOTEBOOK.cells)
    assert "os._exit" not in source and "FAULT_AFTER_STEP" not in source
    assert os.path.exists(ROOT / "tests" / "fault_hook.py")
