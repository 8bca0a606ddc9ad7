"""The decoding settings compared on the validation split, and the rule that chooses one."""


import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from transformers import GenerationConfig

from .evaluate import degeneration, generate_with_limits, loops, paired_bootstrap_ci, rouge_f_scores, word_count

# Decoding, chosen on the validation split
#
# Greedy decoding lets a small fine-tuned model fall into loops ("Fever (usually mild) Fever (usually mild) …"
# until the token limit). Instead of picking a fix by taste, or on the test questions, six settings are compared
# on the first `DECODING_EXAMPLES` **validation** questions, answered by the fine-tuned model:
#
# | setting | what it does (transformers' `GenerationConfig`) |
# | --- | --- |
# | `greedy` | the most likely token each step |
# | `repetition_penalty=1.1`, `=1.2` | greedy, with the logit of every token already in the text divided by 1.1 / 1.2 |
# | `no_repeat_ngram_size=3`, `=4` | greedy, never producing a sequence of 3 / 4 tokens that is already in the text |
# | `sampling` | temperature 0.7, top-p 0.9, seeded with `SEED` (the same answers on every run) |
#
# Note that transformers counts the **prompt** as "already in the text" for both penalties: the question's
# words and the end-of-turn token are penalised too, which can make answers longer or stop them from echoing
# the question. That is one more reason to measure instead of guessing. And what the loop rate cannot see:
# `no_repeat_ngram_size` forbids *exact* repeats, so a model that wants to loop can still drift through
# near-repeats ("Hepatitis B Hepatitis C Hepatitis D …", "pancreatitis pancreatitis …"); read the answers.
#
# **The rule, fixed before any setting was run:** score each setting's answers by ROUGE-L against the
# validation references. A setting is *within noise* of the best one when the 95% paired bootstrap interval of
# its ROUGE-L minus the best setting's ROUGE-L (same questions, 1,000 resamples) includes zero. Among the
# settings within noise, choose the one with the **lowest loop rate**; ties go to the higher ROUGE-L, then to
# the earlier row of the table. The chosen `GenerationConfig` is then used for **both** models in this section
# and in the Gradio UI, and saved next to the adapter as `generation_config.json`; the comparison is written to
# `metrics/decoding_selection.csv`. The test split is not touched by any of this.
DECODING_GRID = {  # name -> GenerationConfig fields, in the order of the rule's last tie-break
    "greedy": {"do_sample": False},
    "repetition_penalty=1.1": {"do_sample": False, "repetition_penalty": 1.1},
    "repetition_penalty=1.2": {"do_sample": False, "repetition_penalty": 1.2},
    "no_repeat_ngram_size=3": {"do_sample": False, "no_repeat_ngram_size": 3},
    "no_repeat_ngram_size=4": {"do_sample": False, "no_repeat_ngram_size": 4},
    "sampling (T=0.7, top_p=0.9, seeded)": {"do_sample": True, "temperature": 0.7, "top_p": 0.9},
}
# validation questions per setting; cpu: one batch of 24 (48, two batches, took 428 s for the six on a 2-core CPU)
DECODING_EXAMPLES = {"gpu": 128, "gpu-large": 64, "cpu": 24, "smoke": 4}
DECODING_RULE = ("lowest loop rate among the settings whose validation ROUGE-L is within noise of the best "
                 "(95% paired bootstrap CI of the difference includes zero); ties: higher ROUGE-L, then grid order")


def decoding_config(model, tokenizer, fields, max_new_tokens):
    """A GenerationConfig with one grid setting, max_new_tokens and the model's end-of-turn and padding ids."""
    own = getattr(model, "generation_config", None)
    ids = {"bos_token_id": getattr(own, "bos_token_id", None),
           "eos_token_id": getattr(own, "eos_token_id", None) or tokenizer.eos_token_id,
           "pad_token_id": tokenizer.pad_token_id}
    return GenerationConfig(**{k: v for k, v in ids.items() if v is not None}, **fields,
                            max_new_tokens=int(max_new_tokens))


def bootstrap_mean_ci(values, n_resamples=1000, seed=0):
    """The mean of values with its 95% percentile bootstrap interval: {mean, low, high}."""
    ci = paired_bootstrap_ci(np.zeros(len(values)), np.asarray(values, dtype=float), np.mean, n_resamples, seed)
    return {"mean": ci["diff"], "low": ci["low"], "high": ci["high"]}


def choose_decoding(rouge, looped, n_resamples=1000, seed=0):
    """Apply the decoding rule to per-question ROUGE-L scores and loop flags ({setting: list}, same questions, grid
    order): one row per setting with its scores, the CI of its difference to the best, within_noise and chosen."""
    names = list(rouge)
    means = {name: float(np.mean(rouge[name])) for name in names}
    best = max(names, key=lambda name: (means[name], -names.index(name)))
    rows = []
    for name in names:
        own = bootstrap_mean_ci(rouge[name], n_resamples, seed)
        gap = paired_bootstrap_ci(rouge[best], rouge[name], np.mean, n_resamples, seed)
        rows.append({"setting": name, "n": len(rouge[name]), "rougeL": means[name], "rougeL_ci95_low": own["low"],
                     "rougeL_ci95_high": own["high"], "loop_rate": float(np.mean(looped[name])),
                     "diff_to_best": gap["diff"], "diff_ci95_low": gap["low"], "diff_ci95_high": gap["high"],
                     "within_noise": bool(gap["low"] <= 0 <= gap["high"]) or name == best})
    table = pd.DataFrame(rows)
    candidates = table[table["within_noise"]]
    pick = min(candidates.index, key=lambda i: (table.at[i, "loop_rate"], -table.at[i, "rougeL"], i))
    return table.assign(chosen=table.index == pick)


# Running the comparison: each setting answers the same validation questions; the table gets each setting's
# loop rate, cut-off rate, distinct-2, answer length and time next to the rule's columns.
def decoding_trials(model, tokenizer, frame, max_new_tokens, batch_size, grid=None, seed=0):
    """Every grid setting's answers to the frame's questions: {setting: {config, answers, hits, rougeL, seconds}}."""
    trials = {}
    for name, fields in (grid or DECODING_GRID).items():
        config = decoding_config(model, tokenizer, fields, max_new_tokens)
        start = time.perf_counter()
        answers, hits = generate_with_limits(model, tokenizer, frame["question"], max_new_tokens, batch_size,
                                             desc=name, generation_config=config, seed=seed)
        trials[name] = {"config": config, "answers": answers, "hits": hits, "seconds": time.perf_counter() - start,
                        "rougeL": rouge_f_scores(answers, frame["answer"])["rougeL"]}
    return trials


def decoding_table(trials, n_resamples=1000, seed=0):
    """The decoding comparison: the rule's table (choose_decoding) with each setting's other measures."""
    table = choose_decoding({name: t["rougeL"] for name, t in trials.items()},
                            {name: [loops(a) for a in t["answers"]] for name, t in trials.items()}, n_resamples, seed)
    extra = pd.DataFrame([{**degeneration(t["answers"], t["hits"]),
                           "mean_words": float(np.mean([word_count(a) for a in t["answers"]])),
                           "seconds": round(t["seconds"], 1), "seed": seed if t["config"].do_sample else None,
                           "generation_config": json.dumps({k: v for k, v in DECODING_GRID.get(name, {}).items()})}
                          for name, t in trials.items()]).drop(columns="loop_rate")
    return pd.concat([table, extra], axis=1)


def write_decoding(table, config, out_dir):
    """Write metrics/decoding_selection.csv and models/final_adapter/generation_config.json; return both paths."""
    out = Path(out_dir)
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "metrics" / "decoding_selection.csv", index=False)
    config.save_pretrained(out / "models" / "final_adapter")
    return out / "metrics" / "decoding_selection.csv", out / "models" / "final_adapter" / "generation_config.json"


def saved_generation_config(adapter_dir):
    """The decoding settings saved next to an adapter (generation_config.json), or None when there are none."""
    return GenerationConfig.from_pretrained(adapter_dir) if (Path(adapter_dir) / "generation_config.json").exists() \
        else None
