"""Parameters, profiles and the settings a run derives from them."""

import dataclasses
import os

# The notebook's parameters, declared once: tools/build_notebook.py writes the notebook's `parameters` cell from this
# list (name, default, the comment shown beside it), so papermill, MEDLLM_<NAME> variables and the tools agree.
PARAMETERS = [
    ("PROFILE", "auto", '"auto", "gpu", "cpu", "smoke" or "gpu-large" (3B in 4-bit)'),
    ("MODEL_ID", None, "None: the profile's model; or a hub id, or a local folder"),
    ("DATASET", None, "None: Medical Meadow flashcards from the hub; or a local .json/.jsonl/.csv file"),
    ("MAX_EXAMPLES", None, "subset size drawn before splitting"),
    ("EPOCHS", None, "final training epochs"),
    ("SWEEP_STEPS", None, "training steps for each of the six experiment configurations"),
    ("EVAL_EXAMPLES", None, "test questions answered by both models"),
    ("RESULTS_DIR", "results", "where every output goes"),
    ("SEED", 42, "controls the subset, the split and training"),
    ("LAUNCH_UI", True, "launch the Gradio app (it does not block the rest of the run)"),
    ("PRECISION", "auto", '"auto", "fp16", "bf16" or "fp32"; auto: bf16 only where the hardware has it natively'),
    ("PERSIST_DIR", None, "None: outputs stay in RESULTS_DIR; or a folder that outlives the runtime (Colab: Drive)"),
    ("EXPORT", [], 'take it with you: any of "merged", "gguf", "hub", "space" (Section 7)'),
    ("HUB_REPO", None, 'for "hub"/"space": "your-name/medical-lora" (created private; needs an HF_TOKEN secret)'),
]
PARAM_DEFAULTS = {name: default for name, default, _ in PARAMETERS}
DRIVE_ROOT = "/content/drive"
HUB_DATASET = "medalpaca/medical_meadow_medical_flashcards"
EMBEDDED_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_DATA = "medical_flashcards_sample.json"
SYSTEM_PROMPT = (
    "You are a careful medical assistant. Answer the medical question accurately and concisely."
)


# What EXPORT can ask for (the Space folder and REPORT.html are always written: they are small)
EXPORT_CHOICES = {
    "merged": "the adapter merged into the base model, saved as a plain model (models/merged/)",
    "gguf": "the merged model as one q8_0 GGUF file for llama.cpp, Ollama and LM Studio (models/gguf/)",
    "hub": "upload the adapter (and the merged model and GGUF when made) to the Hub repo HUB_REPO",
    "space": "upload results/space/ as a Gradio Space named HUB_REPO + '-demo'",
}


def export_list(value):
    """EXPORT as a list of known names (a list, or a comma-separated string); "gguf" brings "merged" with it."""
    if value is None:
        return []
    if not isinstance(value, (str, list, tuple)):
        raise ValueError(f'EXPORT is {value!r}: give a list such as ["merged", "gguf"], or [] for none.')
    if isinstance(value, str):
        value = parse_env_value(value, []) or []  # "merged, gguf" as MEDLLM_EXPORT gives it
    names = [str(name).strip().lower() for name in value if str(name).strip()]
    unknown = [name for name in names if name not in EXPORT_CHOICES]
    if unknown:
        raise ValueError(f"EXPORT has {unknown}, which it does not know: choose from {list(EXPORT_CHOICES)}, "
                         'for example EXPORT = ["merged", "hub"].')
    if "gguf" in names and "merged" not in names:
        names.append("merged")  # the converter reads the merged folder
    return [name for name in EXPORT_CHOICES if name in names]


@dataclasses.dataclass(frozen=True)
class Profile:
    """The resolved settings of one run profile."""

    name: str
    model_id: str
    max_examples: int
    epochs: float
    sweep_steps: int
    eval_examples: int
    max_new_tokens: int  # the cap: Section 2 sets the run's value from the data (90th percentile of train answers)
    max_length: int  # tokens in one packed row: short rows keep the (masked, quadratic) attention cheap
    grad_accum: int  # packed rows per optimizer step
    gen_batch_size: int
    eval_batch_size: int
    quantize_4bit: bool = False  # load the base model in 4-bit NF4 (QLoRA; needs a CUDA GPU)


PROFILES = {
    "gpu": Profile(name="gpu", model_id="TinyLlama/TinyLlama-1.1B-Chat-v1.0", max_examples=5000, epochs=3,
                   sweep_steps=30, eval_examples=200, max_new_tokens=256, max_length=1024, grad_accum=4,
                   gen_batch_size=32, eval_batch_size=16),
    "cpu": Profile(name="cpu", model_id=EMBEDDED_MODEL_NAME, max_examples=1200, epochs=1, sweep_steps=8,
                   eval_examples=40, max_new_tokens=160, max_length=512, grad_accum=4, gen_batch_size=24,
                   eval_batch_size=8),
    "smoke": Profile(name="smoke", model_id=EMBEDDED_MODEL_NAME, max_examples=60, epochs=1, sweep_steps=2,
                     eval_examples=4, max_new_tokens=24, max_length=256, grad_accum=1, gen_batch_size=4,
                     eval_batch_size=8),
    # 3B in 4-bit on one T4; memory estimate and expected time in docs/scaling.md
    "gpu-large": Profile(name="gpu-large", model_id="Qwen/Qwen2.5-3B-Instruct", max_examples=5000, epochs=1,
                         sweep_steps=20, eval_examples=200, max_new_tokens=256, max_length=512, grad_accum=8,
                         gen_batch_size=16, eval_batch_size=8, quantize_4bit=True),
}


# Resolving the parameters: values papermill injects win, then `MEDLLM_<NAME>` environment variables,
# then the profile's defaults.
def parse_env_value(raw, default):
    """Convert an environment string to the type of the parameter's default."""
    if raw.strip().lower() in {"none", "null", ""}:
        return None
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    try:
        return int(raw)
    except ValueError:
        return raw


def apply_env_overrides(params, environ=None):
    """Let MEDLLM_<NAME> variables set parameters that still hold their default value."""
    environ = os.environ if environ is None else environ
    resolved = dict(params)
    for name, default in PARAM_DEFAULTS.items():
        raw = environ.get(f"MEDLLM_{name}")
        if raw is not None and resolved.get(name) == default:
            resolved[name] = parse_env_value(raw, default)
    return resolved


def resolve_profile(name, cuda_available):
    """Return the Profile for a name, turning "auto" into "gpu" or "cpu"."""
    if name == "auto":
        name = "gpu" if cuda_available else "cpu"
    if name not in PROFILES:
        raise ValueError(f"Unknown PROFILE {name!r}: choose one of 'auto', {', '.join(map(repr, PROFILES))}.")
    return PROFILES[name]



def build_run_settings(params, device):
    """Merge parameters, profile defaults and device facts into one flat settings dict."""
    profile = resolve_profile(params["PROFILE"], device["device"] == "cuda")
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {
        "profile": profile.name,
        "model_id": pick(params["MODEL_ID"], profile.model_id),
        "dataset": params["DATASET"],
        "max_examples": int(pick(params["MAX_EXAMPLES"], profile.max_examples)),
        "epochs": float(pick(params["EPOCHS"], profile.epochs)),
        "sweep_steps": int(pick(params["SWEEP_STEPS"], profile.sweep_steps)),
        "sweep_steps_explicit": params["SWEEP_STEPS"] is not None,
        "eval_examples": int(pick(params["EVAL_EXAMPLES"], profile.eval_examples)),
        "max_new_tokens": profile.max_new_tokens,  # replaced in Section 2 by the value the data call for
        "max_new_tokens_cap": profile.max_new_tokens,
        "max_length": profile.max_length,
        "grad_accum": profile.grad_accum,
        "gen_batch_size": min(profile.gen_batch_size, device.get("gen_batch_cap", profile.gen_batch_size)),
        "eval_batch_size": min(profile.eval_batch_size, device.get("eval_batch_cap", profile.eval_batch_size)),
        "quantize_4bit": profile.quantize_4bit,
        "results_dir": str(params["RESULTS_DIR"]),
        "seed": int(params["SEED"]),
        "launch_ui": bool(params["LAUNCH_UI"]),
        "persist_dir": None if params.get("PERSIST_DIR") is None else str(params["PERSIST_DIR"]),
        "export": export_list(params.get("EXPORT")),
        "hub_repo": params.get("HUB_REPO"),
        **device,
    }
