"""How many of our training tokens are the system prompt and chat template, and what a shorter prompt would save.

Tokenizes (no training) the same examples bench_training.py trains on, with the notebook's encode_for_loss(),
and splits every example into: template + system prompt, question, answer (the scored tokens, with the
end-of-turn marker). Then re-counts with shorter system prompts. The speed-up column is an estimate from token
counts only (training time grows about linearly with the tokens of a packed 512-token row on this model; the
attention share is small there), not a measured time.

Example:  python bench/prompt_share.py --examples 48
          python bench/prompt_share.py --data ../shared/data/medical_meadow_wikidoc_patient_information.json
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_training as bench  # noqa: E402

SHORTER = {"short": "Answer the medical question accurately.", "none (template default)": None}


def split_counts(lib, tokenizer, question, answer):
    """(template+system, question, answer) token counts of one encoded example."""
    example = lib.encode_for_loss(tokenizer, question, answer)
    answer_tokens = sum(label != -100 for label in example["labels"])
    question_tokens = len(tokenizer(question, add_special_tokens=False)["input_ids"])
    return len(example["input_ids"]) - answer_tokens - question_tokens, question_tokens, answer_tokens


def totals(lib, tokenizer, frame):
    """Summed (template+system, question, answer) tokens over a frame."""
    parts = [split_counts(lib, tokenizer, q, a) for q, a in zip(frame["question"], frame["answer"])]
    return [sum(p[i] for p in parts) for i in range(3)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=bench.DEFAULT_DATA)
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"Data file not found: {args.data} (skipped)")
        return 0
    lib = bench.load_notebook_lib()
    frame, _, _ = bench.select_examples(lib, args.data, args.examples, args.seed)
    tokenizer = lib.load_model_and_tokenizer(str(lib.embedded_model_dir()), "cpu", "float32")[1]
    rows = []
    for name, prompt in [("current", lib.SYSTEM_PROMPT), *SHORTER.items()]:
        original = lib.SYSTEM_PROMPT
        lib.SYSTEM_PROMPT = prompt
        try:
            template, question, answer = totals(lib, tokenizer, frame) if prompt is not None else \
                totals_without_system(lib, tokenizer, frame)
        finally:
            lib.SYSTEM_PROMPT = original
        rows.append({"system_prompt": name, "text": prompt, "template_and_system": template, "question": question,
                     "answer": answer, "total": template + question + answer})
    base = rows[0]["total"]
    print(f"data={args.data.name} examples={len(frame)}")
    print("| system prompt | template+system tok | question tok | answer tok | total | template share | "
          "answer share | est. speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        row["estimated_speedup"] = base / row["total"]
        print(f"| {row['system_prompt']} | {row['template_and_system']:,} | {row['question']:,} | {row['answer']:,} | "
              f"{row['total']:,} | {row['template_and_system'] / row['total']:.1%} | "
              f"{row['answer'] / row['total']:.1%} | {row['estimated_speedup']:.2f}x |")
    if args.out:
        args.out.write_text(json.dumps({"argv": sys.argv, "examples": len(frame), "rows": rows}, indent=2) + "\n")
    return 0


def totals_without_system(lib, tokenizer, frame):
    """Totals with no system message at all (the chat template then inserts its own default, if it has one)."""
    original = lib.build_messages
    lib.build_messages = lambda question, history=None: [*(history or []), {"role": "user", "content": question}]
    try:
        return totals(lib, tokenizer, frame)
    finally:
        lib.build_messages = original


if __name__ == "__main__":
    sys.exit(main())
