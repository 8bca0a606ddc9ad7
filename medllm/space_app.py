"""The notebook's Gradio app as a Hugging Face Space: `python app.py` in results/space/ (written by medllm.export).

This file is medllm/space_app.py; `write_space` copies it to results/space/app.py next to a copy of the medllm
modules it imports, the adapter and space_config.json. It loads the base model (from the Hub; offline, the embedded
SmolLM2 fallback), puts the adapter on it and serves the same app as Section 6, rails included.
"""

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def space_config(folder=HERE):
    """The Space's settings: base model, adapter folder or Hub repo, answer length and the chosen decoding."""
    return json.loads((Path(folder) / "space_config.json").read_text())


def adapter_source(config, folder=HERE):
    """The adapter folder: the one in the Space, else a download of the Hub repo named in the config."""
    local = Path(folder) / (config.get("adapter") or "adapter")
    if (local / "adapter_config.json").exists():
        return local
    if not config.get("adapter_repo"):
        raise FileNotFoundError(f"No adapter in {local} and no adapter_repo in space_config.json.")
    from huggingface_hub import snapshot_download
    return Path(snapshot_download(config["adapter_repo"]))


def load_space_model(config, folder=HERE):
    """The fine-tuned model (base + adapter, fp32 on CPU or the first GPU), its tokenizer and decoding settings."""
    import torch
    from transformers import GenerationConfig

    from medllm.model import hub_reachable, resolve_model_source
    from medllm.ui import load_finetuned

    adapter = adapter_source(config, folder)
    path, _ = resolve_model_source(config["base_model"], hub_reachable())
    model, tokenizer = load_finetuned(path, adapter, "cuda" if torch.cuda.is_available() else "cpu", "float32")
    chosen = GenerationConfig.from_pretrained(adapter) if (adapter / "generation_config.json").exists() else None
    return model, tokenizer, chosen


def space_app(folder=HERE):
    """The Gradio app of Section 6 around the Space's model."""
    from medllm.ui import build_ui

    config = space_config(folder)
    model, tokenizer, chosen = load_space_model(config, folder)
    settings = {"max_new_tokens": config["max_new_tokens"], "generation_config": chosen,
                "decoding": config.get("decoding")}
    return build_ui(model, tokenizer, settings)


if __name__ == "__main__":
    # Spaces set GRADIO_SERVER_NAME=0.0.0.0; here the app stays on 127.0.0.1 (GRADIO_SERVER_PORT picks the port).
    space_app().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
