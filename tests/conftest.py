"""Shared fixtures: the medllm package as one namespace, and the embedded model loaded once per session.

Tests marked `notorch` need neither torch nor the package's torch-importing modules; CI also runs them under
Python 3.13 (Colab's Python), where no torch installs here (`scripts/test_py313.sh`). Without torch, test files that
hold no such test are not collected at all.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the medllm package
sys.path.insert(0, str(ROOT / "scripts"))  # fake_devices, shared with scripts/gpu_check.py
sys.path.insert(0, str(ROOT / "bench"))  # shared with the benchmarks: reference_check, hostile_inputs, export_check
SHARED_DATA = ROOT.parent / "shared" / "data" / "medical_meadow_wikidoc_patient_information.json"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pytest_configure(config):
    """Register the `notorch` marker."""
    config.addinivalue_line("markers", "notorch: needs neither torch nor medllm's torch modules (runs on 3.13 too)")


def pytest_ignore_collect(collection_path, config):
    """Without torch, skip collecting test files that have no `notorch` test (their imports need torch)."""
    if HAVE_TORCH or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    return True if "notorch" not in collection_path.read_text() else None


@pytest.fixture(scope="session")
def install_lib():
    """medllm.install, the install step: no torch needed."""
    import medllm.install

    return medllm.install


@pytest.fixture(scope="session")
def lib():
    """Every public name of the medllm package in one namespace (patch a name in its own module, not here)."""
    import medllm

    return medllm.namespace()


def patch_everywhere(monkeypatch, lib, name, value):
    """Replace `name` in the test namespace and in every medllm module that holds it (where callers look it up)."""
    import medllm

    monkeypatch.setattr(lib, name, value)
    for module in medllm.MODULES:
        target = sys.modules.get(f"medllm.{module}")
        if target is not None and hasattr(target, name):
            monkeypatch.setattr(target, name, value)


@pytest.fixture(scope="session")
def embedded_model(lib):
    """(model, tokenizer) of the embedded SmolLM2-135M-Instruct, fp32 on the CPU."""
    return lib.load_model_and_tokenizer(lib.embedded_model_dir(), "cpu", "float32")


@pytest.fixture(scope="session")
def tokenizer(embedded_model):
    """The embedded model's tokenizer."""
    return embedded_model[1]


@pytest.fixture()
def peft_model(embedded_model):
    """The embedded model wrapped with a fresh LoRA adapter; the adapter is removed again afterwards."""
    from peft import LoraConfig, get_peft_model

    model, _ = embedded_model
    wrapped = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                               task_type="CAUSAL_LM"))
    yield wrapped
    wrapped.unload()


QUESTIONS = ["What does insulin do?", "Name a first-line drug for type 2 diabetes.",
             "What is the most common cause of community-acquired pneumonia?", "What is anemia?"]
ANSWERS = ["It lowers blood glucose by moving glucose into cells.", "Metformin.",
           "Streptococcus pneumoniae.", "A reduced amount of hemoglobin or red blood cells in the blood."]


def four_example_trainer(lib, model, tokenizer, out_dir, trainer_class):
    """Our recipe's trainer on the four QUESTIONS/ANSWERS examples: fp32 on the CPU, rows of up to 1,024 tokens."""
    import pandas as pd
    from datasets import Dataset

    device = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
    settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, device), "max_length": 1024}
    dataset = Dataset.from_list(lib.to_prompt_completion(pd.DataFrame({"question": QUESTIONS, "answer": ANSWERS})))
    return trainer_class(model=model, args=lib.sft_config(settings, out_dir, 1e-4, max_steps=1),
                         train_dataset=dataset, processing_class=tokenizer)
