"""The recipe: the six LoRA configurations, the TRL training arguments they share, their fingerprint."""

import hashlib
import json
import math
from pathlib import Path

from peft import LoraConfig
from peft.tuners.tuners_utils import BaseTunerLayer
from trl import SFTConfig

from .data import encode_for_loss
from .library_internals import force_one_gpu

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL_LINEAR = ATTENTION + ["gate_proj", "up_proj", "down_proj"]


def sweep_configs(quantization_available):
    """The six LoRA configurations; the sixth is 4-bit QLoRA where bitsandbytes has a GPU."""
    base = {"lora_dropout": 0.05, "quantization": "none"}
    qv = ["q_proj", "v_proj"]
    rows = [("r8-qv-lr2e-4", 2e-4, 8, qv), ("r8-qv-lr1e-3", 1e-3, 8, qv), ("r16-attn-lr5e-4", 5e-4, 16, ATTENTION),
            ("r16-all-lr5e-4", 5e-4, 16, ALL_LINEAR), ("r32-all-lr2e-4", 2e-4, 32, ALL_LINEAR)]
    configs = [{"config": name, "learning_rate": lr, "lora_r": r, "lora_alpha": 2 * r, "target_modules": modules}
               for name, lr, r, modules in rows]
    if quantization_available:
        configs.append({"config": "qlora4bit-r16-all-lr5e-4", "learning_rate": 5e-4, "lora_r": 16, "lora_alpha": 32,
                        "target_modules": ALL_LINEAR, "quantization": "nf4-4bit"})
    else:
        configs.append({"config": "r16-all-lr1e-3", "learning_rate": 1e-3, "lora_r": 16, "lora_alpha": 32,
                        "target_modules": ALL_LINEAR})
    return [{**base, **config} for config in configs]


def lora_config(config):
    """A PEFT LoraConfig for one experiment configuration."""
    return LoraConfig(r=config["lora_r"], lora_alpha=config["lora_alpha"], lora_dropout=config["lora_dropout"],
                      target_modules=list(config["target_modules"]), task_type="CAUSAL_LM")


def remove_lora_layers(model):
    """The model with every LoRA layer replaced by the layer it wrapped (a no-op on a bare model)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer) and name:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, module.get_base_layer())
    if hasattr(model, "peft_config"):
        del model.peft_config
    return model


# The training recipe (TRL's `SFTConfig`), the step budget, and the fingerprint that tells whether a
# saved sweep run was made with the same recipe, data and model.
def sft_config(settings, output_dir, learning_rate, max_steps=-1, epochs=1.0, logging_steps=5, warmup=0.05):
    """TRL SFTConfig for our recipe: packed answer-only rows, no padding, the decided precision, no checkpointing."""
    args = SFTConfig(
        output_dir=str(output_dir), learning_rate=learning_rate, max_steps=max_steps, num_train_epochs=epochs,
        per_device_train_batch_size=1, per_device_eval_batch_size=1,
        gradient_accumulation_steps=settings["grad_accum"],
        max_length=settings["max_length"], packing=True, packing_strategy="bfd", completion_only_loss=True,
        gradient_checkpointing=False, bf16=settings["bf16"], fp16=settings["fp16"],
        use_cpu=settings.get("device", "cpu") == "cpu",  # transformers accepts bf16 on a CPU only with use_cpu
        lr_scheduler_type="cosine", warmup_steps=warmup, weight_decay=0.0, logging_steps=logging_steps,
        eval_strategy="no", save_strategy="no", report_to="none", seed=settings["seed"], data_seed=settings["seed"],
        include_num_input_tokens_seen=True, dataloader_num_workers=0, disable_tqdm=not settings.get("progress"),
        logging_nan_inf_filter=False,  # a NaN loss must reach the log (and NonFiniteLossStop), not be averaged away
    )
    return one_device_unless_launched(args)


def one_device_unless_launched(args):
    """Train on one GPU when several are visible to a single process: TRL refuses nn.DataParallel (n_gpu > 1)."""
    if args.n_gpu > 1:  # torchrun / accelerate launch give each process one GPU and n_gpu 1 already
        force_one_gpu(args)
    return args


def packed_steps_per_epoch(tokenizer, frame, settings):
    """Optimizer steps in one epoch: all training tokens / packed row length / rows per step."""
    tokens = sum(len(encode_for_loss(tokenizer, q, a)["input_ids"]) for q, a in zip(frame["question"], frame["answer"]))
    return max(1, math.ceil(tokens / settings["max_length"] / settings["grad_accum"]))


def sweep_steps_for(settings, final_steps):
    """Steps per configuration: an explicit SWEEP_STEPS as given, else the profile's capped at final_steps / 12."""
    if settings["sweep_steps_explicit"]:
        return settings["sweep_steps"]
    return max(2, min(settings["sweep_steps"], final_steps // 12))


LORA_FIELDS = ("config", "learning_rate", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "quantization")
RECIPE_FIELDS = ("learning_rate", "max_steps", "num_train_epochs", "warmup_steps", "lr_scheduler_type", "weight_decay",
                 "optim", "max_length", "per_device_train_batch_size", "gradient_accumulation_steps", "packing",
                 "packing_strategy", "completion_only_loss", "gradient_checkpointing", "bf16", "fp16", "seed")


def sweep_args(config, settings, run_dir):
    """The SFTConfig of one sweep run: sweep_steps steps, no warm-up (a first step at learning rate 0 is wasted)."""
    return sft_config(settings, Path(run_dir) / config["config"], config["learning_rate"],
                      max_steps=settings["sweep_steps"], logging_steps=max(1, settings["sweep_steps"] // 4), warmup=0)


def data_digest(train, val):
    """SHA-256 of the training and validation rows (each a datasets.Dataset or a DataFrame)."""
    rows = [data.to_list() if hasattr(data, "to_list") else data.to_dict("records") for data in (train, val)]
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()


def run_fingerprint(config, args, data, model):
    """A short hash of what decides a training result: LoRA configuration, TRL recipe, data digest and model."""
    lora = {key: config[key] for key in LORA_FIELDS}
    recipe = {field: str(getattr(args, field)) for field in RECIPE_FIELDS}
    payload = json.dumps([lora, recipe, data, model], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sweep_fingerprint(config, settings, data, model_name):
    """The fingerprint of one sweep run: its SFTConfig (steps, row length, accumulation, seed), data and model."""
    model = {"model": model_name, "dtype": settings["dtype"], "device": settings["device"]}
    return run_fingerprint(config, sweep_args(config, settings, "unused"), data, model)
