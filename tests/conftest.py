"""Shared fixtures: the notebook's lib cells as a module, and the embedded model loaded once per session."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nbload  # noqa: E402

ROOT = nbload.ROOT
SHARED_DATA = ROOT.parent / "shared" / "data" / "medical_meadow_wikidoc_patient_information.json"


@pytest.fixture(scope="session")
def lib():
    """The notebook's `lib` cells loaded into a module."""
    return nbload.load_lib()


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
