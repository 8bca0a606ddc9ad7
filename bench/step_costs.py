"""Per-step cost breakdown behind bench_training.py: what one forward+backward costs per token in each recipe.

One process, one LoRA model (r=8/alpha=16, q_proj+v_proj, fp32 on the CPU), and round-robin repeats so that
load from other jobs spreads over all cases alike. Cases (each one forward + backward, gradients zeroed):

  ref-ckpt         the reference batch: 2 examples padded to 512, loss on every token, checkpointing on
  ref-no-ckpt      the same batch with checkpointing off (the recompute share of the reference)
  packed-model     ours' first packed row (TRL's padding-free collator output), loss from model(**batch)
  packed-trl       the same row through TRL's SFTTrainer.compute_loss (its fused LM head on every position off
                   Triton, + entropy/accuracy metrics): what the notebook ran before issue 12
  packed-ours      the same row through the notebook's MedSFTTrainer.compute_loss: the LM head and the loss only on
                   answer positions, + the same metrics computed from those positions' logits
  packed-ours-nometrics  the same without the metrics (answer_only_loss alone): the metrics' share
  causal-same-ids  the same token ids as ONE plain causal sequence (no position_ids: SDPA's is_causal path,
                   i.e. what the packed row would cost without its block-diagonal mask; not a valid recipe)

Example:  python bench/step_costs.py --repeats 3 --out bench/results/step_costs.json
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training as bench  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=bench.DEFAULT_DATA)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--model", default=None, help="model folder (default: the embedded SmolLM2-135M)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0 = torch default)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per case after one warm-up")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)

    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    lib = bench.load_notebook_lib()
    frame, _, _ = bench.select_examples(lib, args.data, args.examples, args.seed)
    model, tokenizer = lib.load_model_and_tokenizer(args.model or str(lib.embedded_model_dir()), "cpu", "float32")
    model = get_peft_model(model, lib.lora_config(bench.LORA))
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "cpu", "SEED": args.seed},
                                      lib.detect_device())
    settings.update(bf16=False, fp16=False)
    config = lib.sft_config(settings, tempfile.mkdtemp(prefix="step_costs_"), 2e-4)  # nothing is saved there
    dataset = Dataset.from_list(lib.to_prompt_completion(frame))
    trainer = lib.MedSFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    packed = trainer.data_collator([trainer.train_dataset[0]])
    packed = {k: v for k, v in packed.items() if k in {"input_ids", "labels", "position_ids"}}
    row_tokens = int(packed["input_ids"].numel())
    texts = [bench.reference_text(i, q, a) for i, q, a in zip(frame["instruction"], frame["question"],
                                                              frame["answer"])][:bench.REF_BATCH]
    ref = dict(tokenizer(texts, padding="max_length", truncation=True, max_length=bench.REF_MAX_LENGTH,
                         return_tensors="pt"))
    ref["labels"] = ref["input_ids"].clone()
    causal = {"input_ids": packed["input_ids"], "labels": packed["labels"]}
    model.train()

    state = {"checkpointing": False}

    def set_checkpointing(on):
        """Switch the reference's checkpointing (+ input grads) on or off, once per change."""
        if on == state["checkpointing"]:
            return
        base = model.get_base_model()
        if on:
            base.gradient_checkpointing_enable()
            base.enable_input_require_grads()
        else:
            base.activation_checkpointing_disable()
            base.disable_input_require_grads()
        state["checkpointing"] = on

    losses = {
        "model": lambda inputs: model(**inputs, use_cache=False).loss,
        "trl": lambda inputs: lib.SFTTrainer.compute_loss(trainer, model, dict(inputs)),
        "ours": lambda inputs: lib.MedSFTTrainer.compute_loss(trainer, model, dict(inputs)),
        "ours-nometrics": lambda inputs: lib.answer_only_loss(model, dict(inputs))[0],
    }

    def step(inputs, checkpointing=False, loss="model"):
        set_checkpointing(checkpointing)
        loss = losses[loss](inputs)
        loss.backward()
        model.zero_grad(set_to_none=True)

    cases = {
        "ref-ckpt": (ref, {"checkpointing": True}, ref["input_ids"].numel()),
        "ref-no-ckpt": (ref, {}, ref["input_ids"].numel()),
        "packed-model": (packed, {}, row_tokens),
        "packed-trl": (packed, {"loss": "trl"}, row_tokens),
        "packed-ours": (packed, {"loss": "ours"}, row_tokens),
        "packed-ours-nometrics": (packed, {"loss": "ours-nometrics"}, row_tokens),
        "causal-same-ids": (causal, {}, row_tokens),
    }
    times = {name: [] for name in cases}
    cpu_times = {name: [] for name in cases}
    for repeat in range(args.repeats + 1):  # repeat 0 is the warm-up
        for name, (inputs, kwargs, _) in cases.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            step(inputs, **kwargs)
            if repeat:
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - cpu_start)
    rows = []
    answer_tokens = int((packed["labels"][:, 1:] != -100).sum())
    print(f"threads={torch.get_num_threads()} repeats={args.repeats} packed row = {row_tokens} tokens "
          f"({len(packed['position_ids'][0].eq(0).nonzero())} examples, {answer_tokens} scored) "
          f"load {os.getloadavg()[0]:.2f}")
    print("| case | tokens | median s | s per 1k tokens | median CPU s | CPU s per 1k tokens | all s |")
    print("|---|---|---|---|---|---|---|")
    for name, (_, _, tokens) in cases.items():
        median, cpu_median = statistics.median(times[name]), statistics.median(cpu_times[name])
        rows.append({"case": name, "tokens": int(tokens), "median_s": median, "s_per_1k_tokens": median / tokens * 1000,
                     "median_cpu_s": cpu_median, "cpu_s_per_1k_tokens": cpu_median / tokens * 1000,
                     "all_s": times[name], "all_cpu_s": cpu_times[name]})
        print(f"| {name} | {tokens} | {median:.2f} | {median / tokens * 1000:.2f} | {cpu_median:.2f} | "
              f"{cpu_median / tokens * 1000:.2f} | {', '.join(f'{t:.2f}' for t in times[name])} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"argv": sys.argv, "threads": torch.get_num_threads(), "rows": rows,
                                        "answer_tokens": answer_tokens, "load_end": os.getloadavg()[0]},
                                       indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
