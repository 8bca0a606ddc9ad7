"""The notebook's install step (Colab, Kaggle, MEDLLM_INSTALL=1): what it decides, runs and says, without torch.

Every test here is `notorch`: medllm.install imports no torch, so they also run under
Python 3.13, Colab's Python (scripts/test_py313.sh). The end-to-end check in Colab's own package mix is
scripts/test_colab.sh.
"""

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.notorch

VERSIONS = {"transformers": "5.15.0", "peft": "0.20.0", "datasets": "4.0.0", "pyarrow": "18.1.0", "torchao": "0.10.0",
            "accelerate": "1.14.0", "huggingface-hub": "1.27.0"}
REQUIRES = {"transformers": ["huggingface-hub>=1.0,<2"], "trl": ["datasets>=4.7.0", "accelerate>=1.10.1"],
            "datasets": ["pyarrow>=21.0.0", "pytest; extra == 'tests'"], "peft": [], "accelerate": [],
            "pyarrow": [], "huggingface-hub": []}


def requires(name):
    """Requires-Dist of a fake installed distribution."""
    return REQUIRES.get(name, [])


def test_the_notebook_installs_exactly_the_ranges_of_requirements_txt(install_lib):
    sys.path.insert(0, str(ROOT / "tools"))
    if importlib.util.find_spec("jupytext") is None:
        pytest.skip("jupytext (requirements-dev.txt) is not installed")
    import build_notebook

    assert install_lib.REQUIREMENTS == build_notebook.notebook_requirements()
    assert "trl>=1.0,<2" in install_lib.REQUIREMENTS and not any(
        r.startswith(("papermill", "ipykernel", "nbformat")) for r in install_lib.REQUIREMENTS)  # runner only
    cell = "REQUIREMENTS = [  # generated from requirements.txt\n    'stale',\n]\nX = 1"
    assert build_notebook.embed_requirements(cell, ["a>=1", "b==2"]).splitlines()[1:4] == ["    'a>=1',",
                                                                                          "    'b==2',", "]"]


@pytest.mark.parametrize("modules, environ, hosted, wanted", [
    ({"google.colab": types.ModuleType("google.colab")}, {}, "colab", True),
    ({}, {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle", True),
    ({}, {}, None, False),
    ({}, {"MEDLLM_INSTALL": "1"}, None, True),  # how CI takes the Colab path without Drive, secrets or share links
    ({"google.colab": types.ModuleType("google.colab")}, {"MEDLLM_INSTALL": "0"}, "colab", False),
])
def test_when_the_install_step_runs(install_lib, modules, environ, hosted, wanted):
    assert install_lib.hosted_runtime(modules, environ) == hosted
    assert install_lib.install_wanted(modules, environ) is wanted


def test_unmet_requirements_follow_dependencies(install_lib):
    unmet = install_lib.unmet_requirements(["transformers>=5.2,<6", "trl>=1.0,<2", "peft>=0.18,<1"], VERSIONS,
                                           requires)
    assert unmet == ["trl<2,>=1.0"]  # missing; datasets is not reached through trl because trl is not installed
    unmet = install_lib.unmet_requirements(["datasets>=4,<6"], VERSIONS, requires)
    assert unmet == ["pyarrow>=21.0.0"]  # in range itself, but its own requirement is not met
    assert install_lib.unmet_requirements(["transformers>=5.2,<6"], VERSIONS, requires) == []


def test_torchao_below_016_is_breaking_and_016_is_not(install_lib):
    assert install_lib.breaking_packages(VERSIONS) == [("torchao", "0.10.0", install_lib.BREAKING[0][2])]
    assert install_lib.breaking_packages({**VERSIONS, "torchao": "0.16.0"}) == []
    assert install_lib.breaking_packages({"peft": "0.21.2"}) == []


def test_the_install_step_removes_torchao_installs_and_says_what_changed(install_lib, monkeypatch):
    after = {**{k: v for k, v in VERSIONS.items() if k != "torchao"}, "datasets": "5.2.0", "pyarrow": "24.0.0",
             "trl": "1.16.0"}
    snapshots, commands = [VERSIONS, after], []
    monkeypatch.setattr(install_lib, "installed_versions", lambda: snapshots.pop(0))
    monkeypatch.setattr(install_lib, "unmet_requirements", lambda requirements, versions: ["trl<2,>=1.0"])
    line = install_lib.install_requirements(["trl>=1.0,<2", "datasets>=4.7,<6"],
                                            run=lambda argv, check: commands.append(argv[1:]))
    assert commands == [["-m", "pip", "uninstall", "-y", "-q", "torchao"],
                        ["-m", "pip", "install", "-q", "trl>=1.0,<2", "datasets>=4.7,<6"]]
    assert line == ("Install step: added trl 1.16.0; changed datasets 4.0.0 → 5.2.0, pyarrow 18.1.0 → 24.0.0; "
                    f"removed torchao 0.10.0 ({install_lib.BREAKING[0][2]}).")
    assert "\n" not in line


def test_a_second_run_changes_nothing_and_runs_no_pip(install_lib):
    ran = []  # this environment, as it is: pytest and what it needs are installed, torchao is not
    assert install_lib.install_requirements(["pytest>=7"], run=lambda *a, **k: ran.append(a)) == (
        "Install step: nothing to change (every requirement is met).")
    assert ran == []


def test_stale_imports_name_the_menu_items(install_lib):
    modules = {"pyarrow": types.SimpleNamespace(__version__="18.1.0"),
               "numpy": types.SimpleNamespace(__version__="2.1.3")}
    installed = {"pyarrow": "24.0.0", "numpy": "2.1.3"}.__getitem__
    assert install_lib.stale_imports(modules, installed) == [("pyarrow", "18.1.0", "24.0.0")]
    with pytest.raises(RuntimeError, match=r"pyarrow 18\.1\.0 → 24\.0\.0.*Runtime → Restart session, then "
                                           r"Runtime → Run all.*takes a second"):
        install_lib.require_fresh_imports(modules, installed)


def test_the_install_cells_import_no_torch(install_lib):
    assert "torch" not in vars(install_lib)
    source = Path(install_lib.__file__).read_text()
    assert "import torch" not in source and "google.colab import" not in source
