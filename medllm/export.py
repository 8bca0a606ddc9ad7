"""Take it with you: merged weights, a GGUF file, a Hugging Face Space folder, the Hub upload, REPORT.html."""


import base64
import html
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

from .checkpoints import file_sha256
from .model import find_hf_token, hub_reachable, load_model_and_tokenizer, model_cache_dir
from .persist import announce

# Merged weights
#
# `merge_and_unload` adds each LoRA update B·A (times alpha/r) into the frozen weight it belongs to, so the result
# is a plain model: `AutoModelForCausalLM.from_pretrained` loads it without PEFT. The merge runs on the CPU (no GPU
# memory) and saves the weights in the precision the run measured them in: 16-bit on a GPU (fp16 on a T4), fp32 on
# a CPU. In the same precision the merged model gives the same greedy answers as base + adapter (tests/
# test_export.py); rounding fp32 weights to 16 bits would change some of them, which is why a CPU run keeps fp32.
def merge_adapter(model_path, adapter_dir, target_dir, dtype="float32", card=None):
    """Merge the saved adapter into the base model and save model, tokenizer, generation config and card."""
    from peft import PeftModel
    from transformers import AutoTokenizer, GenerationConfig

    adapter_dir, target_dir = Path(adapter_dir), Path(target_dir)
    base, _ = load_model_and_tokenizer(model_path, "cpu", dtype)
    model = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    model.config.use_cache = True  # training turned the cache off; a plain model for inference wants it on
    if (adapter_dir / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(adapter_dir)
    staging = target_dir.with_name(f"{target_dir.name}.tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    AutoTokenizer.from_pretrained(adapter_dir).save_pretrained(staging)  # with the chat template used in training
    copy_sentencepiece_model(model_path, staging)
    if card:
        (staging / "README.md").write_text(card)
    shutil.rmtree(target_dir, ignore_errors=True)
    staging.rename(target_dir)
    return target_dir


def copy_sentencepiece_model(model_path, target_dir):
    """Copy the base's SentencePiece tokenizer.model (TinyLlama has one) to the merged folder for llama.cpp."""
    target, base = Path(target_dir) / "tokenizer.model", Path(model_path)
    if target.exists():
        return target
    if base.is_dir():  # a local folder or a hub snapshot: it has the file or there is none
        source = base / "tokenizer.model"
    else:
        from huggingface_hub import hf_hub_download
        try:
            source = Path(hf_hub_download(str(model_path), "tokenizer.model"))
        except Exception:  # noqa: BLE001 - the repo has none (byte-level BPE models) or the hub is unreachable
            return None
    if not source.is_file():
        return None
    shutil.copy2(source, target)
    return target


# GGUF
#
# llama.cpp's `convert_hf_to_gguf.py` is pure Python (torch, numpy, sentencepiece and its own `gguf-py`) and
# writes q8_0 itself; only the smaller k-quants (Q4_K_M …) need the compiled `llama-quantize`. The converter is
# taken from a llama.cpp checkout named by LLAMA_CPP_DIR, else from the source release of llama-cpp-python on
# PyPI (which carries llama.cpp): a pinned release, so the converter and its gguf-py are the tested pair.
CONVERTER_RELEASE = ("llama-cpp-python", "0.3.36")
CONVERTER_URL = ("https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59f"
                 "e7cf3/llama_cpp_python-0.3.36.tar.gz")
CONVERTER_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"  # PyPI's, for this file
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def gguf_converter(cache_dir=None, environ=None):
    """The folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ (downloaded once into the cache)."""
    environ = os.environ if environ is None else environ
    if environ.get("LLAMA_CPP_DIR"):
        folder = Path(environ["LLAMA_CPP_DIR"]).expanduser()
        if not (folder / "convert_hf_to_gguf.py").exists():
            raise FileNotFoundError(f"LLAMA_CPP_DIR={folder} has no convert_hf_to_gguf.py: point it at a llama.cpp "
                                    "checkout (git clone https://github.com/ggml-org/llama.cpp) or unset it.")
        return folder
    name, version = CONVERTER_RELEASE
    folder = Path(cache_dir or model_cache_dir()) / f"llama.cpp-from-{name}-{version}"
    if (folder / "convert_hf_to_gguf.py").exists():
        return folder
    archive = folder.with_name(folder.name + ".tar.gz")
    archive.parent.mkdir(parents=True, exist_ok=True)
    announce(f"Downloading llama.cpp's converter (the source release of {name} {version} from PyPI, about 75 MB).")
    urllib.request.urlretrieve(CONVERTER_URL, archive)
    if file_sha256(archive) != CONVERTER_SHA256:
        archive.unlink()
        raise RuntimeError(f"The download of {CONVERTER_URL} does not match PyPI's SHA-256: try again later.")
    prefix = f"{name.replace('-', '_')}-{version}/vendor/llama.cpp/"
    staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            relative = member.name.removeprefix(prefix)
            if member.name.startswith(prefix) and member.isfile() and relative.startswith(CONVERTER_PARTS):
                member.name = relative
                tar.extract(member, staging, filter="data")
    archive.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return folder


def convert_to_gguf(merged_dir, outfile, converter_dir, outtype="q8_0"):
    """Run llama.cpp's converter on the merged model folder; its log goes next to the file. Returns the file."""
    if importlib.util.find_spec("sentencepiece") is None:
        raise RuntimeError("llama.cpp's converter needs sentencepiece: pip install 'sentencepiece>=0.2,<0.3'.")
    outfile = Path(outfile)
    outfile.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(Path(converter_dir) / "gguf-py")}  # the converter's own gguf-py
    command = [sys.executable, str(Path(converter_dir) / "convert_hf_to_gguf.py"), str(merged_dir),
               "--outtype", outtype, "--outfile", str(outfile)]
    log = outfile.with_suffix(".convert.log")
    with log.open("w") as handle:
        done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"convert_hf_to_gguf.py failed (exit {done.returncode}); the end of {log}:\n{tail}")
    return outfile


def gguf_summary(path):
    """What a GGUF file holds, read back with the gguf package: architecture, tensor count and tensor types."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    field = reader.fields["general.architecture"]
    types = sorted({tensor.tensor_type.name for tensor in reader.tensors})
    return {"file": Path(path).name, "bytes": Path(path).stat().st_size, "tensors": len(reader.tensors),
            "architecture": bytes(field.parts[field.data[0]]).decode(), "tensor_types": types}


# The Space folder
#
# `results/space/` is a complete Hugging Face Space: `app.py` (medllm/space_app.py) builds the same Gradio app
# as Section 6 from a copy of the same modules (rails included), on the base model with this run's adapter,
# which travels in the folder (and is read from the Hub repo when the folder has none).
SPACE_MODULES = ["__init__", "settings", "persist", "model", "data", "rails", "ui"]
SPACE_REQUIREMENTS = ["transformers", "peft", "accelerate", "google-re2", "ftfy", "pandas", "gguf"]


def space_requirements():
    """The Space's requirements.txt lines: torch plus the notebook's own ranges for what the app imports."""
    from packaging.requirements import Requirement

    from .install import REQUIREMENTS, canonical_name

    by_name = {canonical_name(Requirement(line).name): line for line in REQUIREMENTS}
    return ["torch", *(by_name[canonical_name(name)] for name in SPACE_REQUIREMENTS)]


def space_readme(config, hub_repo):
    """The Space's README.md: the metadata block Hugging Face reads (sdk, app_file, models), then how to use it."""
    import gradio

    models = [config["base_model"], *([hub_repo] if hub_repo else [])]
    lines = ["---", "title: Medical QA with LoRA (demo)", "emoji: 🩺", "colorFrom: blue", "colorTo: green",
             "sdk: gradio", f"sdk_version: {gradio.__version__}", "app_file: app.py", "models:",
             *(f"  - {model}" for model in models), "license: mit",
             "short_description: A small LLM fine-tuned with LoRA on medical flashcards; not medical advice", "---",
             "", "# Medical question answering with LoRA: the notebook's demo", "",
             "> ⚠️ **Not medical advice.** A small model fine-tuned for a learning project; it makes confident "
             "mistakes.", "",
             f"The Gradio app of the notebook's Section 6 (chat, base-vs-fine-tuned comparison, safety notices) on "
             f"`{config['base_model']}` with the LoRA adapter in `adapter/`"
             + (f" (the notebook also uploads it to the model repo `{hub_repo}` when asked)." if hub_repo else "."),
             "",
             "- **Run it here:** `python app.py` (it prints the local address).",
             "- **Put it online:** `hf auth login`, then `hf upload <your-name>/<space-name> . . --repo-type space` "
             "from this folder (creates the Space, Gradio SDK, and uploads everything). On free CPU hardware the "
             "answers come slowly (nothing here measured how slowly); GPU hardware is quicker.",
             "- `space_config.json` holds the base model, where the adapter is and the decoding settings chosen "
             "on the validation split.", ""]
    return "\n".join(lines)


def write_space(results_dir, base_model, hub_repo=None, settings=None):
    """Write results/space/: app.py, the medllm modules it uses, the adapter, config, requirements and README."""
    import medllm

    out = Path(results_dir)
    adapter = out / "models" / "final_adapter"
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"No adapter in {adapter}: run Section 4 (fine-tuning) before writing the Space.")
    space = out / "space"
    shutil.rmtree(space, ignore_errors=True)
    (space / "medllm").mkdir(parents=True)
    package = Path(medllm.__file__).parent
    for name in SPACE_MODULES:
        shutil.copy2(package / f"{name}.py", space / "medllm" / f"{name}.py")
    shutil.copy2(package / "space_app.py", space / "app.py")
    shutil.copytree(adapter, space / "adapter")
    settings = settings or {}
    config = {"base_model": base_model, "adapter": "adapter", "adapter_repo": hub_repo,
              "max_new_tokens": int(settings.get("max_new_tokens", 256)), "decoding": settings.get("decoding")}
    (space / "space_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (space / "requirements.txt").write_text("\n".join(space_requirements()) + "\n")
    (space / "README.md").write_text(space_readme(config, hub_repo))
    return space


# The Hub
#
# Uploads go through huggingface_hub with the token from the Colab secret or HF_TOKEN (`find_hf_token`); the
# token is passed to the client and never printed or written. Repos are created **private**: make them public
# on their settings page when you want to share them. Without a repo name, a token or a connection the step
# says why it skipped; the files stay in results/ for a later upload.
def hub_plan(results_dir):
    """What goes to the model repo: [(local folder, path in the repo)], the adapter (with its card) at the root."""
    out = Path(results_dir) / "models"
    plan = [(out / "final_adapter", "")]
    plan += [(out / sub, sub) for sub in ("merged", "gguf") if (out / sub).is_dir()]
    return plan


def hub_skip_reason(repo_id, token, online):
    """Why the upload cannot happen now (None when it can)."""
    if not repo_id:
        return 'HUB_REPO is not set: name a repo, for example HUB_REPO = "your-name/medical-lora".'
    if not token:
        return ("no Hugging Face token: add a Colab secret named HF_TOKEN (a token with write access, "
                "huggingface.co/settings/tokens) or set the HF_TOKEN environment variable.")
    if not online:
        return "the Hugging Face Hub is unreachable from here (offline)."
    return None


def push_to_hub(results_dir, repo_id, export, api=None, token=None, online=None):
    """Upload what EXPORT asks for; returns a record of what was uploaded or why it was skipped (never the token)."""
    from huggingface_hub import HfApi

    wanted = [name for name in ("hub", "space") if name in export]
    if not wanted:
        return {"status": "not requested"}
    token = token if token is not None else find_hf_token()[0]
    reason = hub_skip_reason(repo_id, token, hub_reachable() if online is None else online)
    if reason:
        return {"status": "skipped", "reason": reason}
    api = api or HfApi(token=token)
    record = {"status": "uploaded", "repos": []}
    try:
        if "hub" in wanted:
            api.create_repo(repo_id, private=True, exist_ok=True)
            for folder, path_in_repo in hub_plan(results_dir):
                api.upload_folder(repo_id=repo_id, folder_path=folder, path_in_repo=path_in_repo or None,
                                  commit_message=f"medllm: {path_in_repo or 'adapter'}", ignore_patterns=["*.tmp*"])
            record["repos"].append(f"https://huggingface.co/{repo_id}")
        if "space" in wanted:
            space_id = f"{repo_id}-demo"
            api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=True, exist_ok=True)
            api.upload_folder(repo_id=space_id, repo_type="space", folder_path=Path(results_dir) / "space",
                              commit_message="medllm: the notebook's demo app")
            record["repos"].append(f"https://huggingface.co/spaces/{space_id}")
    except Exception as error:  # noqa: BLE001 - a refused token, a taken name, a dropped connection: say which
        message = str(error).replace(token, "***")
        return {**record, "status": "failed", "reason": f"{type(error).__name__}: {message}"}
    return record


# REPORT.html
#
# The same REPORT.md rendered by markdown-it-py (CommonMark with tables) into one self-contained page: every plot
# is embedded as a data URI, so the file can be mailed or uploaded alone, and the print style gives a clean PDF
# from the browser's "Save as PDF".
REPORT_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1b1b1b; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9em; max-width: 100%; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.4rem; vertical-align: top; text-align: left;
         overflow-wrap: break-word; }
th { font-size: 0.9em; overflow-wrap: anywhere; background: #f0f0f0; }  /* column names may break, numbers never */
p, li { overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; }
code { background: #f4f4f4; padding: 0 0.2em; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; }
blockquote { border-left: 4px solid #d9822b; margin: 0.8rem 0; padding: 0.2rem 0.8rem; background: #fff7ef; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  table { font-size: 8pt; }
  table, img, blockquote, pre { page-break-inside: avoid; }
  h1, h2, h3 { page-break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""


def embed_images(tokens, folder):
    """Point every image of the parsed Markdown at a data URI of its file (images that are missing stay as they are)."""
    for token in tokens:
        for child in token.children or []:
            source = child.attrGet("src") if child.type == "image" else None
            if source and not source.startswith(("data:", "http:", "https:")) and (Path(folder) / source).is_file():
                data = base64.b64encode((Path(folder) / source).read_bytes()).decode()
                child.attrSet("src", f"data:image/{Path(source).suffix.lstrip('.').lower()};base64,{data}")
    return tokens


def report_html(results_dir):
    """REPORT.md as one self-contained, print-friendly HTML page (plots embedded)."""
    from markdown_it import MarkdownIt

    folder = Path(results_dir)
    text = (folder / "REPORT.md").read_text()
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.renderer.render(embed_images(md.parse(text), folder), md.options, {})
    heading = next((line.lstrip("# ") for line in text.splitlines() if line.startswith("# ")), "Report")
    title = heading.replace("`", "").replace("**", "").strip()
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{REPORT_CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


def write_report_html(results_dir):
    """Write REPORT.html beside REPORT.md and return its path."""
    path = Path(results_dir) / "REPORT.html"
    path.write_text(report_html(results_dir))
    return path


def write_export_record(results_dir, record):
    """Write metrics/export.json: what was exported, the checks made on it and the Hub's answer."""
    path = Path(results_dir) / "metrics" / "export.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
