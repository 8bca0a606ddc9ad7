"""GPU self-check under T4 conditions, reusing the notebook's own functions (its `lib` cells).

Runs 2 steps of every sweep configuration (QLoRA included), 2 steps of the final training, batched generation
of 8 questions, the perplexity pass and the UI build; prints per stage the time, the peak memory and ✓/✗, then
one verdict line. `--dry-run` only lists the stages and checks that what they need exists (CPU, seconds).
"""

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import nbload  # noqa: E402

T4_MEMORY_GB = 15.0
NEEDED = ("device_decision", "detect_device", "use_trl_triton_loss", "build_run_settings", "load_model_and_tokenizer",
          "embedded_data_path", "read_table", "map_columns", "clean_pairs", "split_frame", "to_prompt_completion",
          "sweep_configs", "run_sweep_config", "select_best", "selected_config", "training_base", "lora_config",
          "sft_config", "MedSFTTrainer", "EvalEveryFraction", "release_memory", "generate_answers",
          "model_perplexities", "build_ui", "embedded_model_dir", "memory_in_use_mb", "peak_memory_mb",
          "reset_peak_memory")
MODULES = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "gradio")


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="list the stages and check their ingredients")
    parser.add_argument("--random-init", action="store_true",
                        help="no hub: a randomly initialised model of TinyLlama-1.1B's shape")
    parser.add_argument("--model", default=None, help="model id or folder (default: the gpu profile's model)")
    parser.add_argument("--precision", default="fp16", help="fp16 = T4 conditions (default)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="run the stages on a CPU with the embedded model and smoke shapes (tests the script)")
    parser.add_argument("--sweep-configs", type=int, default=None,
                        help="run only the first N sweep configurations (a quicker partial check)")
    parser.add_argument("--no-t4-memory", action="store_true",
                        help="do not cap this process at a T4's 15 GB on a larger GPU")
    return parser.parse_args(argv)


def stage_names(lib):
    """The stages in order."""
    sweep = [f"sweep: {c['config']}" for c in lib.sweep_configs(True)]
    return ["device", "model", *sweep, "final training", "generation", "perplexity", "ui build"]


def dry_run(lib):
    """List the stages and check that every module and notebook function they use is there."""
    import importlib.util

    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    missing += [name for name in NEEDED if not hasattr(lib, name)]
    for name in stage_names(lib):
        print(f"  ○ {name}")
    print(f"settings under T4 conditions: {lib.device_decision('cuda', (7, 5), T4_MEMORY_GB, False, 'fp16')}")
    if missing:
        print(f"VERDICT: ✗ dry run: missing {', '.join(missing)}")
        return 1
    print(f"VERDICT: ✓ dry run: {len(stage_names(lib))} stages, every module and notebook function they need exists")
    return 0


def random_tinyllama(lib, folder):
    """Save a randomly initialised model of TinyLlama-1.1B's shape, with the embedded tokenizer, to folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(lib.embedded_model_dir())
    # TinyLlama's vocabulary is 32,000; the embedded tokenizer's ids go higher, so the vocabulary is widened to it
    config = LlamaConfig(hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                         intermediate_size=5632, vocab_size=max(32000, len(tokenizer)), max_position_embeddings=2048,
                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id, dtype=torch.float16)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.float16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    return str(folder)


class Stages:
    """Run stages one by one, recording time, peak memory above the start, and ✓/✗."""

    def __init__(self, lib, device):
        self.lib, self.device, self.results = lib, device, []

    def run(self, name, work):
        """Run one stage; a failure is recorded and printed, and later stages still run."""
        self.lib.release_memory(self.device)
        self.lib.reset_peak_memory(self.device)
        before = self.lib.memory_in_use_mb(self.device)
        start = time.perf_counter()
        try:
            value, ok, error = work(), True, ""
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its cause
            value, ok, error = None, False, f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        seconds = time.perf_counter() - start
        peak = self.lib.peak_memory_mb(self.device) - before
        self.results.append((name, ok, seconds, peak, error))
        print(f"{'✓' if ok else '✗'} {name:<34} {seconds:7.1f} s  peak +{peak:8.0f} MB  {error}", flush=True)
        return value


def prepare(lib, args):
    """Device, settings (gpu profile shapes, forced precision), model path and data splits."""
    import torch

    device = lib.detect_device(args.precision)
    lib.use_trl_triton_loss(device["triton_loss"])
    if device["device"] == "cuda" and not args.no_t4_memory and device["memory_gb"] > T4_MEMORY_GB:
        torch.cuda.set_per_process_memory_fraction(T4_MEMORY_GB / device["memory_gb"])
    profile, model_id = ("smoke", str(lib.embedded_model_dir())) if args.cpu_smoke else ("gpu", args.model)
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": profile, "MODEL_ID": model_id}, device)
    settings = {**settings, "sweep_steps": 2, "progress": False}
    lib.set_library_progress_bars(False)
    frame, _ = lib.clean_pairs(lib.map_columns(lib.read_table(lib.embedded_data_path())))
    splits = lib.split_frame(frame, settings["seed"])
    splits["val"] = splits["val"].head(16)  # scoring is not what this check measures: keep it short
    return settings, splits


def run_checks(lib, args, work_dir):
    """Every stage in order; returns the Stages record."""
    from datasets import Dataset

    settings, splits = prepare(lib, args)
    stages = Stages(lib, settings["device"])
    stages.run("device", lambda: print(f"  {settings['device_name']}: {lib.gpu_record(settings)}, "
                                       f"precision {settings['precision']}"))
    path = (random_tinyllama(lib, work_dir / "model") if args.random_init else settings["model_id"])
    loaded = stages.run("model", lambda: lib.load_model_and_tokenizer(path, settings["device"], settings["dtype"]))
    if loaded is None:
        return stages
    model, tokenizer = loaded
    train_ds = Dataset.from_list(lib.to_prompt_completion(splits["train"]))
    val_ds = Dataset.from_list(lib.to_prompt_completion(splits["val"]))
    rows = []
    for config in lib.sweep_configs(settings["qlora"])[:args.sweep_configs]:
        row = stages.run(f"sweep: {config['config']}", lambda config=config: lib.run_sweep_config(
            config, model, tokenizer, train_ds, splits["val"], settings, path, work_dir / "runs"))
        rows += [row] if row else []
    qlora = [c for c in lib.sweep_configs(settings["qlora"]) if c["quantization"] != "none"]
    final = qlora[0] if qlora else lib.sweep_configs(False)[0]  # the 4-bit path is the riskier one to check

    def final_training():
        base = lib.training_base(final, model, settings, path)
        peft_model = lib.get_peft_model(base, lib.lora_config(final))
        trainer = lib.MedSFTTrainer(model=peft_model, train_dataset=train_ds, eval_dataset=val_ds,
                                    args=lib.sft_config(settings, work_dir / "final", final["learning_rate"],
                                                        max_steps=2, logging_steps=1),
                                    processing_class=tokenizer, callbacks=[lib.EvalEveryFraction(2)])
        trainer.train()
        return peft_model

    tuned = stages.run(f"final training ({final['config']}, 2 steps)", final_training)
    tuned = tuned or lib.get_peft_model(model, lib.lora_config(lib.sweep_configs(False)[0]))
    questions = list(splits["test"]["question"][:8])
    stages.run("generation (8 questions)", lambda: lib.generate_answers(
        tuned, tokenizer, questions, settings["max_new_tokens"], settings["gen_batch_size"]))
    stages.run("perplexity", lambda: lib.model_perplexities(tuned, tokenizer, splits["test"].head(32),
                                                            settings["eval_batch_size"]))
    stages.run("ui build", lambda: lib.build_ui(tuned, tokenizer, settings))
    return stages


def main(argv=None):
    """Dry run, or every stage and one verdict line; exit status 0 only when everything passed."""
    args = parse_args(argv)
    lib = nbload.load_lib()
    print("GPU self-check stages:")
    if args.dry_run:
        return dry_run(lib)
    import torch

    if args.cpu_smoke:
        args.precision, args.random_init = "fp32", False
    elif not torch.cuda.is_available():
        print("VERDICT: ✗ no CUDA GPU is visible: this check needs one (use --dry-run on a CPU).")
        return 1
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        stages = run_checks(lib, args, Path(work_dir))
    failed = [name for name, ok, *_ in stages.results if not ok]
    expected = len(stage_names(lib)) - 6 + len(lib.sweep_configs(True)[:args.sweep_configs])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (--cpu-smoke)"
    if failed or len(stages.results) < expected:
        print(f"VERDICT: ✗ {len(failed)} of {expected} stages failed on {gpu}: {', '.join(failed) or 'stopped early'}")
        return 1
    print(f"VERDICT: ✓ all {expected} stages passed on {gpu} ({args.precision}, gpu-profile shapes unless --cpu-smoke) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
