"""What merging and GGUF conversion keep: greedy answers of the merged model in each precision, and of the q8_0 file.

tests/test_export.py uses two helpers from here: greedy_answers and random_adapter.

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
import medllm  # noqa: E402

lib = medllm.namespace()


QUESTIONS = ["What does insulin do?", "Name a first-line drug for type 2 diabetes.",
             "What is the most common cause of community-acquired pneumonia?", "What is anemia?"]


def greedy_answers(lib, model, tokenizer, config=None, questions=QUESTIONS):
    """Answers to the questions with a generation config (default: the model's own) and the training chat template."""
    model.eval()
    answers = []
    for question in questions:
        inputs = tokenizer.apply_chat_template(lib.build_messages(question), add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**inputs, generation_config=config or model.generation_config, use_cache=True)
        answers.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return answers


def random_adapter(model, seed=0):
    """The model with a random LoRA adapter on every linear layer (B × 0.3: answers change, still sentences)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    wrapped = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear",
                                               init_lora_weights=False, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, parameter in wrapped.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.3)
    return wrapped


def answers(model, tokenizer, config):
    """Answers to QUESTIONS with the given generation config."""
    return greedy_answers(lib, model, tokenizer, config)


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
