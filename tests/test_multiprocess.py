"""One training entry point in one process or two: gloo DDP on the CPU trains like one process.

The expensive test starts tools/medllm_train.py twice on the smoke profile: once in one process, once in two
processes with `accelerate launch`. Both runs use 2 packed rows per optimizer
step (1 per process in the two-process run), the same data order and the same seed.
"""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
SCRIPT = ROOT / "tools" / "medllm_train.py"
CONFIG = "r16-all-lr5e-4"
EPOCHS = "0.5"  # 5 optimizer steps of 2 rows: stops before the end of the data, where DDP pads an odd count
LOSS_TOLERANCE = 1e-3  # relative; measured 1.7e-4 (LoRA-dropout masks and summation order differ)


def test_accumulation_is_split_over_processes_or_refused(lib):
    assert lib.per_process_accumulation(8, 1) == 8
    assert lib.per_process_accumulation(8, 2) == 4
    with pytest.raises(ValueError, match="cannot be split evenly over 2 processes.*multiple of 2"):
        lib.per_process_accumulation(1, 2)  # the smoke profile's 1 row per step cannot go to two processes
    with pytest.raises(ValueError, match="over 3 processes"):
        lib.per_process_accumulation(4, 3)


def test_final_args_keep_rows_per_step(lib, tmp_path):
    device = {"device": "cpu", "device_name": "cpu", "dtype": "float32", "bf16": False, "fp16": False}
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "cpu"}, device)
    config = lib.sweep_configs(False)[0]
    one, two = (lib.final_training_args(settings, tmp_path, config, n) for n in (1, 2))
    assert one.gradient_accumulation_steps == settings["grad_accum"] == 2 * two.gradient_accumulation_steps
    assert lib.batch_report(one, 1, 10)["rows_per_optimizer_step"] == lib.batch_report(two, 2, 10)[
        "rows_per_optimizer_step"] == settings["grad_accum"]


def test_notebook_relaunch_passes_this_runs_settings(lib, tmp_path):
    device = {"device": "cuda", "device_name": "T4", "dtype": "float16", "bf16": False, "fp16": True}
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "gpu-large", "SEED": 7,
                                       "RESULTS_DIR": str(tmp_path)}, device)
    argv, env = lib.accelerate_launch_command(2, settings, SCRIPT)
    assert argv[argv.index("--num_processes") + 1] == "2" and str(SCRIPT) in argv
    assert argv[argv.index("--grad-accum") + 1] == "8"
    assert env["MEDLLM_PROFILE"] == "gpu-large" and env["MEDLLM_SEED"] == "7"
    assert env["MEDLLM_RESULTS_DIR"] == str(tmp_path)
    assert lib.apply_env_overrides(dict(lib.PARAM_DEFAULTS), env)["DATASET"] is None


def test_gpu_large_profile_is_4bit_and_refused_without_cuda(lib):
    profile = lib.PROFILES["gpu-large"]
    assert profile.quantize_4bit and not any(p.quantize_4bit for n, p in lib.PROFILES.items() if n != "gpu-large")
    assert profile.max_length * profile.grad_accum == 4096  # tokens per optimizer step, as in the gpu profile
    if not lib.torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA GPU"):
            lib.load_model_and_tokenizer(lib.embedded_model_dir(), "cpu", "float32", quantize_4bit=True)


def _train(out, launcher):
    """Run the terminal script with the smoke profile into `out`; return its combined output."""
    env = {**os.environ, "MEDLLM_PROFILE": "smoke", "MEDLLM_RESULTS_DIR": str(out), "MEDLLM_EPOCHS": EPOCHS,
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "MEDLLM_PRECISION": "fp32"}  # same arithmetic on every CPU (bf16 autocast rounds the processes apart)
    env.pop("WORLD_SIZE", None)
    argv = [*launcher, str(SCRIPT), "--config", CONFIG, "--grad-accum", "2"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def test_two_gloo_processes_train_like_one(tmp_path):
    single = _train(tmp_path / "one", [sys.executable])
    ddp = _train(tmp_path / "two", [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                    "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                                    "--dynamo_backend", "no"])
    assert "[rank 0/1]" in single
    assert "[rank 0/2]" in ddp and "[rank 1/2]" in ddp  # both processes ran

    adapters = sorted((tmp_path / "two").rglob("adapter_model.safetensors"))
    assert adapters == [tmp_path / "two" / "models" / "final_adapter" / "adapter_model.safetensors"]
    reports = [json.loads((tmp_path / run / "run_config.json").read_text())["final_training"] for run in ("one", "two")]
    assert reports[0]["processes"] == 1 and reports[1]["processes"] == 2
    assert reports[1]["accumulation_per_process"] == 1
    assert reports[0]["rows_per_optimizer_step"] == reports[1]["rows_per_optimizer_step"] == 2
    assert reports[0]["optimizer_steps"] == reports[1]["optimizer_steps"] >= 5

    logs = [pd.read_csv(tmp_path / run / "metrics" / "training_log.csv") for run in ("one", "two")]
    assert logs[0]["step"].tolist() == logs[1]["step"].tolist()
    for column in ("loss", "eval_loss"):
        one, two = (log.dropna(subset=[column]).set_index("step")[column] for log in logs)
        assert len(one) >= 1 and one.index.tolist() == two.index.tolist()
        assert ((one - two).abs() / one).max() < LOSS_TOLERANCE, (column, one.tolist(), two.tolist())
