"""GPU self-check under T4 conditions, reusing the notebook's own functions (the medllm package).

Runs 2 steps of every sweep configuration (QLoRA included), 2 steps of the final training, batched generation
of 8 questions, the perplexity pass and the UI build; prints per stage the time, the peak memory and ✓/✗, then
one verdict line. A stage passes only when nothing raised AND its results are sane: every logged loss finite, the
trainable parameters fp32, the fp16 loss scale not collapsed (at least one optimizer step not skipped) and the
adapter really updated, every generated answer non-empty, perplexities finite.

`--emulate-t4` on a bigger GPU (A100, L4, H100): the T4's decisions (capability 7.5: fp16, no bf16, TRL's Triton
loss off, SDPA's enable_gqa off), flash and cuDNN attention off (a T4 has neither; memory-efficient and math
stay), and this process capped at a T4's 15 GB. `--dry-run` (CPU, seconds) checks the ingredients, builds the real
SFTConfig and MedSFTTrainer of every stage under a faked T4 (the libraries' own checks run), trains 2 real steps
of a tiny model on this CPU and runs every stage's sanity check on it, and shows that the checks catch a NaN loss,
a collapsed loss scale and empty answers.
"""

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import medllm  # noqa: E402
import medllm.train  # noqa: E402

T4_MEMORY_GB = 15.0
NEEDED = ("device_decision", "detect_device", "use_trl_triton_loss", "build_run_settings", "load_model_and_tokenizer",
          "embedded_data_path", "read_table", "map_columns", "clean_pairs", "split_frame", "to_prompt_completion",
          "sweep_configs", "run_sweep_config", "select_best", "selected_config", "training_base", "lora_config",
          "sft_config", "MedSFTTrainer", "EvalEveryFraction", "release_memory", "generate_answers",
          "model_perplexities", "build_ui", "embedded_model_dir", "memory_in_use_mb", "peak_memory_mb",
          "reset_peak_memory", "use_sdpa_gqa", "train_one", "NonFiniteLoss", "cast_frozen_to_compute_dtype")
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
    parser.add_argument("--emulate-t4", action="store_true",
                        help="on a bigger GPU: T4 decisions (capability 7.5), flash/cuDNN attention off, 15 GB")
    return parser.parse_args(argv)


T4_CAPABILITY = (7, 5)
INIT_LOSS_SCALE = 2.0**16  # torch's GradScaler starts here and halves on every skipped (overflowed) step


def training_problems(trainer, steps):
    """What is wrong with a finished training run (empty when sane): losses, dtypes, loss scale, adapter updates."""
    import math


    problems = []
    losses = [e[k] for e in trainer.state.log_history for k in ("loss", "train_loss", "eval_loss") if k in e]
    if not losses or not all(math.isfinite(x) for x in losses):
        problems.append(f"losses not all finite: {losses}")
    dtypes = {str(p.dtype) for p in trainer.model.parameters() if p.requires_grad}
    if dtypes != {"torch.float32"}:
        problems.append(f"trainable parameters are {sorted(dtypes)}, not fp32")
    scaler = trainer.accelerator.scaler
    if scaler is not None:
        scale = scaler.get_scale()
        if not INIT_LOSS_SCALE / 2 ** (steps - 1) <= scale <= INIT_LOSS_SCALE * 2:
            problems.append(f"fp16 loss scale {scale:g}: every one of {steps} steps overflowed (or it grew)")
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]  # zero at the start
    if lora_b and not any(bool(p.detach().abs().sum() > 0) for p in lora_b):
        problems.append("the adapter did not change: no optimizer step was applied")
    return problems


def answer_problems(answers):
    """What is wrong with generated answers (empty when every one has text)."""
    empty = [i for i, a in enumerate(answers) if not isinstance(a, str) or not a.strip()]
    return [f"{len(empty)} of {len(answers)} answers are empty (positions {empty})"] if empty else []


def require(problems, what):
    """Raise AssertionError listing the problems of a stage."""
    if problems:
        raise AssertionError(f"{what}: " + "; ".join(problems))


def emulate_t4(lib, torch):
    """T4 conditions on a bigger GPU: its decisions, flash and cuDNN attention off; returns the device dict."""
    facts = lib.device_facts()
    facts.update(capability=T4_CAPABILITY, memory_gb=T4_MEMORY_GB, native_bf16=False,
                 device_name=f"{facts['device_name']} emulating a Tesla T4")
    torch.backends.cuda.enable_flash_sdp(False)  # a T4 has no flash attention (sm80+) ...
    torch.backends.cuda.enable_cudnn_sdp(False)  # ... and PyTorch's cuDNN attention needs sm80+ too
    torch.backends.cuda.enable_mem_efficient_sdp(True)
    torch.backends.cuda.enable_math_sdp(True)
    return facts


def stage_names(lib):
    """The stages in order."""
    sweep = [f"sweep: {c['config']}" for c in lib.sweep_configs(True)]
    return ["device", "model", *sweep, "final training", "generation", "perplexity", "ui build"]


def dry_run(lib):
    """Ingredients; every stage's real SFTConfig and trainer under a faked T4; the sanity checks on a real CPU run."""
    import importlib.util

    missing = [m for m in MODULES if importlib.util.find_spec(m) is None]
    missing += [name for name in NEEDED if not hasattr(lib, name)]
    for name in stage_names(lib):
        print(f"  ○ {name}")
    print(f"settings under T4 conditions: {lib.device_decision('cuda', T4_CAPABILITY, T4_MEMORY_GB, False, 'fp16')}")
    if missing:
        print(f"VERDICT: ✗ dry run: missing {', '.join(missing)}")
        return 1
    failures = []
    lib.set_library_progress_bars(False)
    for name, check in (("faked T4: the libraries accept every stage's trainer", dry_t4_trainers),
                        ("CPU: 2 real steps pass the stage checks, broken runs fail them", dry_stage_checks)):
        try:
            print(f"  ✓ {name}: {check(lib)}")
        except Exception as exc:  # noqa: BLE001 - reported with its cause
            traceback.print_exc()
            failures.append(f"{name} ({type(exc).__name__}: {exc})")
    if failures:
        print(f"VERDICT: ✗ dry run: {'; '.join(failures)}")
        return 1
    print(f"VERDICT: ✓ dry run: {len(stage_names(lib))} stages, every module and notebook function they need exists, "
          "the T4 trainers build, the stage checks work")
    return 0


def tiny_llama(tokenizer):
    """A two-layer Llama with grouped key/value heads: the shapes of the real thing, in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tokenizer),
                                        pad_token_id=tokenizer.pad_token_id))


def dry_data(lib, tokenizer, rows=8):
    """A few prompt/completion records from the embedded sample."""
    from datasets import Dataset

    frame, _ = lib.clean_pairs(lib.map_columns(lib.read_table(lib.embedded_data_path())))
    return Dataset.from_list(lib.to_prompt_completion(frame.head(rows)))


def dry_t4_trainers(lib):
    """Under a faked T4, build the real SFTConfig of every stage and a MedSFTTrainer: fp16, GradScaler, one GPU."""
    from fake_devices import DEVICES, fake_cuda, no_model_transfer, reset_accelerate_state
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lib.embedded_model_dir())
    built, folder = 0, tempfile.mkdtemp(prefix="gpu_check_dry_")
    try:
        with fake_cuda(DEVICES["T4"]), no_model_transfer(lib.MedSFTTrainer):
            settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "gpu"}, lib.detect_device("fp16")),
                        "sweep_steps": 2, "progress": False}
            for config in lib.sweep_configs(settings["qlora"]):
                args = lib.sweep_args(config, settings, folder)
                model = lib.get_peft_model(tiny_llama(tokenizer), lib.lora_config(config))
                trainer = lib.MedSFTTrainer(model=model, args=args, train_dataset=dry_data(lib, tokenizer),
                                            processing_class=tokenizer)
                assert trainer.accelerator.mixed_precision == "fp16" and trainer.accelerator.scaler is not None
                assert trainer.args.n_gpu == 1 and not settings["triton_loss"] and not settings["sdpa_gqa"]
                built += 1
    finally:
        reset_accelerate_state()
        shutil.rmtree(folder, ignore_errors=True)
    return f"{built} trainers (fp16, GradScaler, 1 GPU, no Triton loss, no SDPA GQA)"


def dry_stage_checks(lib):
    """Train 2 real steps of a tiny model on this CPU: the checks pass; a NaN run and empty answers fail them."""
    import tempfile
    import types

    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lib.embedded_model_dir())
    settings = {**lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke"}, lib.detect_device("auto")),
                "sweep_steps": 2, "progress": False}
    config = lib.sweep_configs(False)[1]
    with tempfile.TemporaryDirectory() as folder:
        trainer, _ = lib.train_one(tiny_llama(tokenizer), tokenizer, dry_data(lib, tokenizer), None, config,
                                   lib.sweep_args(config, settings, folder))
        require(training_problems(trainer, 2), "a sane CPU run")
        broken = tiny_llama(tokenizer)
        with torch.no_grad():
            broken.model.embed_tokens.weight[5:] = float("nan")
        try:
            lib.train_one(broken, tokenizer, dry_data(lib, tokenizer), None, config,
                          lib.sweep_args(config, settings, folder))
            raise AssertionError("a NaN loss was not stopped")
        except lib.NonFiniteLoss:
            pass
    collapsed = types.SimpleNamespace(get_scale=lambda: INIT_LOSS_SCALE / 4)
    trainer.accelerator = types.SimpleNamespace(scaler=collapsed)
    assert any("loss scale" in p for p in training_problems(trainer, 2)), "a collapsed loss scale passed"
    assert answer_problems(["An answer.", " "]) and not answer_problems(["An answer."]), "empty answers passed"
    return f"{settings['precision']} run sane; NaN loss, collapsed scale and empty answers caught"


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

    real_memory = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else None
    facts = emulate_t4(lib, torch) if args.emulate_t4 else lib.device_facts()
    device = {**facts, **lib.device_decision(facts["device"], facts["capability"], facts["memory_gb"],
                                             facts["native_bf16"], args.precision)}
    lib.use_trl_triton_loss(device["triton_loss"])
    lib.use_sdpa_gqa(device["sdpa_gqa"])
    if device["device"] == "cuda" and not args.no_t4_memory and real_memory > T4_MEMORY_GB:
        torch.cuda.set_per_process_memory_fraction(T4_MEMORY_GB / real_memory)
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
    rows, train_one = [], lib.train_one

    def checked_train_one(*args, **kwargs):
        """The notebook's train_one, with the stage checks run on its trainer before the sweep frees it."""
        trainer, seconds = train_one(*args, **kwargs)
        require(training_problems(trainer, settings["sweep_steps"]), "training")
        return trainer, seconds

    medllm.train.train_one = checked_train_one  # run_sweep_config looks it up in its own module
    for config in lib.sweep_configs(settings["qlora"])[:args.sweep_configs]:
        row = stages.run(f"sweep: {config['config']}", lambda config=config: lib.run_sweep_config(
            config, model, tokenizer, train_ds, splits["val"], settings, path, work_dir / "runs"))
        rows += [row] if row else []
    lib.train_one = train_one
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
        require(training_problems(trainer, 2), "final training")
        if final["quantization"] != "none":
            lib.cast_frozen_to_compute_dtype(peft_model, settings["dtype"])  # as Section 4 does for a QLoRA row
        return peft_model

    tuned = stages.run(f"final training ({final['config']}, 2 steps)", final_training)
    tuned = tuned or lib.get_peft_model(model, lib.lora_config(lib.sweep_configs(False)[0]))
    questions = list(splits["test"]["question"][:8])

    def generation():
        answers = lib.generate_answers(tuned, tokenizer, questions, settings["max_new_tokens"],
                                       settings["gen_batch_size"])
        require(answer_problems(answers), "generation")
        return answers

    def perplexity():
        import math

        scores = lib.model_perplexities(tuned, tokenizer, splits["test"].head(32), settings["eval_batch_size"])
        require([f"{k} perplexity {v}" for k, v in scores.items() if not math.isfinite(v)], "perplexity")
        return scores

    stages.run("generation (8 questions)", generation)
    stages.run("perplexity", perplexity)
    stages.run("ui build", lambda: lib.build_ui(tuned, tokenizer, settings))
    return stages


def main(argv=None):
    """Dry run, or every stage and one verdict line; exit status 0 only when everything passed."""
    args = parse_args(argv)
    lib = medllm.namespace()
    print("GPU self-check stages:")
    if args.dry_run:
        return dry_run(lib)
    import torch

    if args.cpu_smoke:
        args.precision, args.random_init, args.emulate_t4 = "fp32", False, False
    elif not torch.cuda.is_available():
        print("VERDICT: ✗ no CUDA GPU is visible: this check needs one (use --dry-run on a CPU).")
        return 1
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work_dir:
        stages = run_checks(lib, args, Path(work_dir))
    failed = [name for name, ok, *_ in stages.results if not ok]
    expected = len(stage_names(lib)) - 6 + len(lib.sweep_configs(True)[:args.sweep_configs])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (--cpu-smoke)"
    gpu += " emulating a T4" if args.emulate_t4 else ""
    if failed or len(stages.results) < expected:
        print(f"VERDICT: ✗ {len(failed)} of {expected} stages failed on {gpu}: {', '.join(failed) or 'stopped early'}")
        return 1
    print(f"VERDICT: ✓ all {expected} stages passed on {gpu} ({args.precision}, gpu-profile shapes unless --cpu-smoke) "
          f"in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
