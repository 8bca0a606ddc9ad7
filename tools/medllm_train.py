"""Train the notebook's final model from a terminal: in one process, or in N with `accelerate launch` / `torchrun`.

The recipe is not copied here: this script imports the medllm package (which the notebook embeds) and calls the
same `train_final` that Section 4 calls. Data and model are prepared the notebook's way
(same parameters, same seed, same split); the configuration is the `selected` row of
RESULTS_DIR/experiments/experiment_tracking.csv (written by the notebook's Section 3) unless --config names one.

    python tools/medllm_train.py --config r16-all-lr5e-4                         # one process
    accelerate launch --multi_gpu --num_processes 2 tools/medllm_train.py       # 2 GPUs (or 2 CPU processes, gloo)
    accelerate launch --config_file configs/accelerate/ddp.yaml tools/medllm_train.py

Parameters are the notebook's, as MEDLLM_<NAME> environment variables or `-p NAME VALUE` (MEDLLM_PROFILE=smoke,
-p EPOCHS 0.5, ...). --grad-accum sets the packed rows per optimizer step over all processes (default: the
profile's); each of N processes accumulates grad_accum / N of them, so the optimizer steps match one process.
Only the first process writes metrics/training_log.csv, the curves, models/final_adapter/ and run_config.json.
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import medllm  # noqa: E402
import pandas as pd  # noqa: E402
from datasets import Dataset  # noqa: E402  - the package the notebook embeds: the same code, imported


def parse_args(argv=None):
    """Command-line options: notebook parameters, the configuration and the rows per optimizer step."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter, e.g. -p PROFILE smoke (wins over MEDLLM_<NAME>)")
    parser.add_argument("--config", help="configuration name from Section 3's six (default: the table's selected row)")
    parser.add_argument("--grad-accum", type=int, help="packed rows per optimizer step over all processes")
    return parser.parse_args(argv)


def run_settings(lib, options):
    """The notebook's settings dict from MEDLLM_* variables, -p options and the device."""
    params = lib.apply_env_overrides(dict(lib.PARAM_DEFAULTS))
    for name, value in options.parameter:
        if name not in lib.PARAM_DEFAULTS:
            raise SystemExit(f"Unknown parameter {name!r}: choose one of {', '.join(lib.PARAM_DEFAULTS)}.")
        params[name] = lib.parse_env_value(value, lib.PARAM_DEFAULTS[name])
    device = lib.detect_device(params["PRECISION"])
    lib.use_trl_triton_loss(device["triton_loss"])
    lib.use_sdpa_gqa(device["sdpa_gqa"])
    settings = lib.build_run_settings(params, device)
    if options.grad_accum is not None:
        settings["grad_accum"] = options.grad_accum
    return settings


def choose_config(lib, settings, name):
    """The named configuration, else the selected row of this run's experiment table; a clear error otherwise."""
    table = Path(settings["results_dir"]) / "experiments" / "experiment_tracking.csv"
    if name is None and table.is_file():
        return lib.selected_config(pd.read_csv(table))
    configs = {c["config"]: c for c in lib.sweep_configs(settings["qlora"])}
    if name in configs:
        return configs[name]
    given = "no --config was given" if name is None else f"--config {name!r} is not one of {', '.join(configs)}"
    raise SystemExit(f"No configuration: {table} does not exist and {given}. Run the notebook's Section 3 first "
                     "(it writes the table), or pass --config NAME.")


def prepare(lib, settings, config):
    """Base model (a 4-bit copy for a QLoRA row, as Section 4 trains it), tokenizer, train/val datasets."""
    from accelerate import PartialState

    state = PartialState(cpu=settings["device"] == "cpu")
    with state.main_process_first():  # the first process fills the model/data caches, the others reuse them
        online = lib.hub_reachable()
        model_path, _ = lib.resolve_model_source(settings["model_id"], online)
        device = f"cuda:{state.local_process_index}" if settings["device"] == "cuda" else "cpu"
        model, tokenizer = lib.load_model_and_tokenizer(model_path, device, settings["dtype"],
                                                        quantize_4bit=settings.get("quantize_4bit", False))
        raw, _, _ = lib.load_dataset_frame(settings["dataset"], online)
        base = lib.training_base(config, model, settings, model_path)  # the notebook's Section 4 does the same
    if base is not model:
        lib.release_memory(settings["device"], model)
    splits, _, _ = lib.data_pipeline(lib.map_columns(raw), tokenizer, settings)  # the notebook's own data steps
    train_ds = Dataset.from_list(lib.to_prompt_completion(splits["train"]))
    val_ds = Dataset.from_list(lib.to_prompt_completion(splits["val"]))
    return base, tokenizer, train_ds, val_ds


def main(argv=None, lib=None):
    """Train the selected configuration in this process (one of WORLD_SIZE) and write the outputs once."""
    options = parse_args(argv)
    os.environ.setdefault("MEDLLM_HOME", str(ROOT))  # where the embedded data sample is found
    lib = lib or medllm.namespace()
    settings = run_settings(lib, options)
    lib.per_process_accumulation(settings["grad_accum"], lib.world_size())  # refuse before loading anything
    config = choose_config(lib, settings, options.config)
    out = Path(settings["results_dir"])
    for folder in ("metrics", "visualizations", "models"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    warnings.filterwarnings("ignore", message=".*padding-free.*")
    model, tokenizer, train_ds, val_ds = prepare(lib, settings, config)
    rank = int(os.environ.get("RANK", "0"))
    print(f"[rank {rank}/{lib.world_size()}] training {config['config']} on {len(train_ds)} examples", flush=True)
    lib.train_final(model, tokenizer, train_ds, val_ds, config, settings, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
