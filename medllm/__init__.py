"""medllm: the code behind the medical-QA LoRA notebook, one module per stage.

The notebook (medical-llm-pipeline-standalone-colab.ipynb) embeds this package in folded form cells and imports it;
tests, tools/, bench/ and scripts/ import it directly. Modules, in the order a run uses them: install, settings,
persist, device, model, data, recipe, checkpoints, train, sweep, evaluate, decoding, knowledge, rails, ui, report,
export (space_app is the Space's app.py); library_internals holds every place that depends on a library's private state.
"""

import importlib
import types

MODULES = ["install", "settings", "persist", "library_internals", "device", "model", "data", "recipe", "checkpoints",
           "train", "sweep", "evaluate", "decoding", "knowledge", "rails", "ui", "report", "export", "space_app"]


def namespace():
    """Every public name of every module in one namespace (what the notebook's cells see), for scripts and tests."""
    merged = types.ModuleType("medllm.namespace")
    for name in MODULES:
        module = importlib.import_module(f"medllm.{name}")
        merged.__dict__.update({key: value for key, value in vars(module).items() if not key.startswith("_")})
    return merged
