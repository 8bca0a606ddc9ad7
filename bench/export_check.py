"""What merging and GGUF conversion keep: greedy answers of the merged model in each precision, and of the q8_0 file.

Usage: python bench/export_check.py   (run alone; prints the load next to the times)

On the embedded SmolLM2-135M-Instruct with a random LoRA adapter on every linear layer (B scaled by 0.3, so the
answers change but stay sentences), four medical questions, 32 new tokens, greedy with no_repeat_ngram_size=4:
- base + adapter in fp32 (what a CPU run measures) against the merged model saved in fp32, fp16 and bf16;
- base + adapter in fp16 against the merged model in fp16 (the same precision: a T4 run's case);
- the merged fp32 model against its q8_0 GGUF (llama.cpp's converter), loaded back with transformers.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import medllm  # noqa: E402
from conftest import QUESTIONS  # noqa: E402
from test_export import greedy_answers, random_adapter  # noqa: E402

lib = medllm.namespace()


def answers(model, tokenizer, config):
    """Answers to QUESTIONS with the given generation config (the test's helper)."""
    return greedy_answers(lib, model, tokenizer, config, QUESTIONS)


def same(a, b):
    """How many of two answer lists agree, as 'k/n'."""
    return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"


def main():
    """Build the adapter, merge it in three precisions, convert to GGUF, and print what agrees."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    print(f"load before: {os.getloadavg()[0]:.2f}")
    base_dir = lib.embedded_model_dir()
    work = Path(tempfile.mkdtemp())
    model, tokenizer = lib.load_model_and_tokenizer(base_dir, "cpu", "float32")
    config = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=4"], 32)
    base = answers(model, tokenizer, config)
    wrapped = random_adapter(model)
    tuned = answers(wrapped, tokenizer, config)
    wrapped.save_pretrained(work / "adapter")
    tokenizer.save_pretrained(work / "adapter")
    config.save_pretrained(work / "adapter")
    print(f"base vs base + adapter (fp32): {same(base, tuned)} answers agree (the adapter changes them)")
    for dtype in ("float32", "float16", "bfloat16"):
        start = time.perf_counter()
        folder = lib.merge_adapter(base_dir, work / "adapter", work / f"merged-{dtype}", dtype)
        seconds = time.perf_counter() - start
        merged = answers(AutoModelForCausalLM.from_pretrained(folder), tokenizer, config)
        print(f"merged {dtype:8s} ({seconds:.1f} s to merge and save): {same(merged, tuned)} agree with fp32 "
              "base + adapter")
    half, _ = lib.load_model_and_tokenizer(base_dir, "cpu", "float16")
    half_tuned = answers(PeftModel.from_pretrained(half, work / "adapter"), tokenizer, config)
    merged_half = answers(AutoModelForCausalLM.from_pretrained(work / "merged-float16"), tokenizer, config)
    print(f"merged float16 vs fp16 base + adapter: {same(merged_half, half_tuned)} agree")
    start = time.perf_counter()
    gguf = lib.convert_to_gguf(work / "merged-float32", work / "gguf" / "model-q8_0.gguf", lib.gguf_converter())
    seconds = time.perf_counter() - start
    summary = lib.gguf_summary(gguf)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(work / "merged-float32")
    print(f"GGUF q8_0: {summary['bytes']:,} bytes, {summary['tensors']} tensors {summary['tensor_types']}, "
          f"{seconds:.1f} s to convert; greedy answers {same(answers(loaded, tokenizer, config), tuned)} agree with "
          "fp32 base + adapter")
    ids = tokenizer(tokenizer.apply_chat_template(
        [*lib.build_messages(QUESTIONS[0]), {"role": "assistant", "content": tuned[0]}], tokenize=False),
        return_tensors="pt")["input_ids"]
    with torch.no_grad():
        agree = (merged(ids).logits.argmax(-1) == loaded(ids).logits.argmax(-1)).float().mean().item()
    print(f"GGUF q8_0 vs merged fp32: next-token predictions agree on {agree:.1%} of {ids.shape[1]} positions")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
