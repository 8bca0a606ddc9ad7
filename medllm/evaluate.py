"""Answering, degeneration, BLEU/ROUGE/perplexity, paired bootstrap intervals and their plots."""

import collections
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import sacrebleu
import torch
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from tqdm.auto import tqdm

from .data import build_messages
from .device import progress_bars_wanted
from .train import answer_nll, in_halving_batches

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
OVERLAP_METRICS = ("bleu",) + ROUGE_TYPES
METRIC_LABELS = {"bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
PREDICTION_COLUMNS = ["question", "reference", "base_answer", "fine_tuned_answer",
                      "base_rougeL", "fine_tuned_rougeL", "base_bleu", "fine_tuned_bleu",
                      "base_rouge1", "fine_tuned_rouge1", "base_rouge2", "fine_tuned_rouge2",
                      "base_words", "fine_tuned_words", "reference_words",
                      "base_loops", "fine_tuned_loops", "base_distinct2", "fine_tuned_distinct2"]
HIT_COLUMNS = ["base_hit_limit", "fine_tuned_hit_limit"]  # present when the answers were generated here
TIE_EPSILON = 1e-9  # per-example ROUGE-L differences smaller than this count as ties
DEMO_QUESTIONS = [
    "What is the first-line medication for type 2 diabetes?",
    "What are the typical symptoms of appendicitis?",
    "How does aspirin work?",
    "How is strep throat treated?",
    "What is hypertension?",
]


def end_of_turn_ids(model, tokenizer):
    """The token ids that end an answer: the model's generation config's eos_token_id, else the tokenizer's."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = tokenizer.eos_token_id if ids is None else ids
    return set(ids) if isinstance(ids, (list, tuple, set)) else {ids}


def generate_batch(model, tokenizer, prompts, max_new_tokens, generation_config=None):
    """Continuations of a batch of tokenized prompts (left-padded), decoded without the prompt: [(text, hit_limit)].

    Greedy without a generation config. hit_limit: the answer used all max_new_tokens without ending its turn."""
    device = next(model.parameters()).device
    encoded = tokenizer.pad({"input_ids": [list(p) for p in prompts]}, padding=True, return_tensors="pt")
    decoding = {"do_sample": False} if generation_config is None else {"generation_config": generation_config}
    with torch.no_grad():
        output = model.generate(input_ids=encoded["input_ids"].to(device),
                                attention_mask=encoded["attention_mask"].to(device),
                                max_new_tokens=max_new_tokens, use_cache=True,
                                pad_token_id=tokenizer.pad_token_id, **decoding)
    new_tokens = output[:, encoded["input_ids"].shape[1]:]
    ends = end_of_turn_ids(model, tokenizer)
    hits = [not any(int(token) in ends for token in row) for row in new_tokens]
    texts = [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return list(zip(texts, hits))


# Many questions at once: batched longest prompt first (memory peaks early), answers back in input order.
# `answer_with_both` runs the same questions through the base model (adapter off) and the fine-tuned model.
def generate_with_limits(model, tokenizer, questions, max_new_tokens, batch_size, desc="generating",
                         generation_config=None, seed=0):
    """Answers to questions with the training chat prompt, batched by length, in input order; and whether each
    hit max_new_tokens. Sampling settings are seeded, so a rerun gives the same answers."""
    questions = list(questions)
    prompts = [tokenizer.apply_chat_template(build_messages(q), add_generation_prompt=True, tokenize=True,
                                             return_dict=False) for q in questions]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # longest first: memory peaks early
    answers, hits = [None] * len(prompts), [None] * len(prompts)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    if generation_config is not None and generation_config.do_sample:
        torch.manual_seed(seed)
    progress = tqdm(total=len(order), desc=desc, unit="question", disable=not progress_bars_wanted())

    def run_batch(batch):
        """Answer one batch of question indices and record the answers in place."""
        for i, (text, hit) in zip(batch, generate_batch(model, tokenizer, [prompts[i] for i in batch],
                                                        max_new_tokens, generation_config)):
            answers[i], hits[i] = text, hit
        progress.update(len(batch))

    try:
        in_halving_batches(order, batch_size, run_batch)  # a CUDA out-of-memory halves the batch and retries
    finally:
        tokenizer.padding_side = padding_side
        progress.close()
    return answers, hits


def generate_answers(model, tokenizer, questions, max_new_tokens, batch_size, desc="generating",
                     generation_config=None, seed=0):
    """Answers to questions with the training chat prompt (greedy unless a generation config is given)."""
    return generate_with_limits(model, tokenizer, questions, max_new_tokens, batch_size, desc, generation_config,
                                seed)[0]


def answer_with_both(model, tokenizer, questions, max_new_tokens, batch_size, generation_config=None, seed=0):
    """Answers of the base model (adapter disabled) and the fine-tuned model, and whether each hit the limit."""
    questions = list(questions)
    with model.disable_adapter():
        base, base_hits = generate_with_limits(model, tokenizer, questions, max_new_tokens, batch_size, "base model",
                                               generation_config, seed)
    tuned, tuned_hits = generate_with_limits(model, tokenizer, questions, max_new_tokens, batch_size,
                                             "fine-tuned model", generation_config, seed)
    return pd.DataFrame({"question": questions, "base_answer": base, "fine_tuned_answer": tuned,
                         "base_hit_limit": base_hits, "fine_tuned_hit_limit": tuned_hits})


# Degeneration, per answer, on whitespace-separated words: a **loop** is a sequence of 4 words that occurs 3 or
# more times (overlapping occurrences count); **distinct-2** is the share of distinct word pairs.
LOOP_NGRAM, LOOP_TIMES = 4, 3
DEGENERATION_METRICS = ("loop_rate", "distinct_2", "hit_max_new_tokens")


def most_repeated_ngram(text, n=LOOP_NGRAM):
    """How often the most frequent sequence of n whitespace-separated words occurs in a text (0 if shorter)."""
    words = str(text).split()
    return max(collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1)).values(), default=0)


def loops(text, n=LOOP_NGRAM, times=LOOP_TIMES):
    """True when some sequence of n words occurs `times` times or more in the text."""
    return most_repeated_ngram(text, n) >= times


def distinct_n(text, n=2):
    """Distinct word n-grams ÷ all word n-grams of a text (1.0 = nothing repeated; NaN below n words)."""
    words = str(text).split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def degeneration(answers, hits=None):
    """Loop rate, mean distinct-2 and (when known) the share of answers that hit max_new_tokens."""
    answers = list(answers)
    values = [distinct_n(a) for a in answers]
    known = [v for v in values if not math.isnan(v)]
    return {"loop_rate": float(np.mean([loops(a) for a in answers])) if answers else float("nan"),
            "distinct_2": float(np.mean(known)) if known else float("nan"),
            "hit_max_new_tokens": float(np.mean(hits)) if hits is not None and len(hits) else None}


# Scores per example: sacreBLEU and ROUGE (with stemming) against the reference, and answer lengths;
# perplexity from the summed answer-token negative log-likelihood.
def perplexity(nll, n_tokens):
    """Perplexity from a summed negative log-likelihood over n_tokens tokens: exp(nll / n_tokens)."""
    return math.exp(nll / n_tokens)


def model_perplexities(model, tokenizer, frame, batch_size):
    """Answer-only perplexity of the base (adapter disabled) and fine-tuned model on a question/answer frame."""
    with model.disable_adapter():
        base = perplexity(*answer_nll(model, tokenizer, frame, batch_size))
    return {"base": base, "fine_tuned": perplexity(*answer_nll(model, tokenizer, frame, batch_size))}


def unit_score(score):
    """A sacreBLEU 0-100 score as a float in [0, 1] (clipping float round-off such as 100.00000000000004)."""
    return min(1.0, max(0.0, float(score) / 100))


def corpus_bleu(predictions, references):
    """SacreBLEU corpus BLEU of predictions against one reference each, in [0, 1]."""
    return unit_score(sacrebleu.corpus_bleu(list(predictions), [list(references)]).score)


def sentence_bleus(predictions, references):
    """SacreBLEU sentence BLEU of each prediction against its reference, in [0, 1]."""
    return [unit_score(sacrebleu.sentence_bleu(p, [r]).score) for p, r in zip(predictions, references)]


def bleu_statistics(predictions, references):
    """Per-example BLEU sufficient statistics (sys_len, ref_len, 4 n-gram matches, 4 n-gram totals) as an array."""
    metric = BLEU()
    rows = []
    for p, r in zip(predictions, references):
        score = metric.corpus_score([p], [[r]])
        rows.append([score.sys_len, score.ref_len, *score.counts, *score.totals])
    return np.array(rows, dtype=np.int64).reshape(-1, 10)


def bleu_from_statistics(stats):
    """Corpus BLEU in [0, 1] from per-example sufficient statistics (equals corpus_bleu on the same examples)."""
    total = stats.sum(axis=0)
    score = BLEU.compute_bleu(total[2:6].tolist(), total[6:10].tolist(), int(total[0]), int(total[1]),
                              smooth_method="exp")
    return unit_score(score.score)


def rouge_f_scores(predictions, references):
    """Per-example ROUGE-1/2/L F-measures (rouge-score with stemming), as a dict of lists."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(r, p) for p, r in zip(predictions, references)]
    return {name: [float(s[name].fmeasure) for s in scores] for name in ROUGE_TYPES}


def word_count(text):
    """Number of whitespace-separated words in a text."""
    return len(str(text).split())


def example_scores(frame):
    """Per-example ROUGE-1/2/L, sentence BLEU, word counts, loops, distinct-2 and (when known) hit-limit flags of
    base and fine-tuned answers vs the reference."""
    scored = frame[["question", "reference", "base_answer", "fine_tuned_answer"]].copy()
    for side in ("base", "fine_tuned"):
        predictions = list(scored[f"{side}_answer"])
        rouge = rouge_f_scores(predictions, scored["reference"])
        scored[f"{side}_rougeL"] = rouge["rougeL"]
        scored[f"{side}_bleu"] = sentence_bleus(predictions, scored["reference"])
        scored[f"{side}_rouge1"] = rouge["rouge1"]
        scored[f"{side}_rouge2"] = rouge["rouge2"]
        scored[f"{side}_loops"] = [loops(p) for p in predictions]
        scored[f"{side}_distinct2"] = [distinct_n(p) for p in predictions]
    for column in ("base_answer", "fine_tuned_answer", "reference"):
        scored[column.replace("_answer", "") + "_words"] = scored[column].map(word_count)
    hits = [column for column in HIT_COLUMNS if column in frame]
    scored[hits] = frame[hits].astype(bool)
    return scored[PREDICTION_COLUMNS + hits]


# Uncertainty: a paired bootstrap over the test questions gives a 95% CI for each difference, and
# the win/tie/loss rate counts per-question ROUGE-L wins.
def paired_bootstrap_ci(base_stats, tuned_stats, statistic, n_resamples=1000, seed=0, level=0.95):
    """Percentile CI of statistic(fine-tuned) − statistic(base) over example indices resampled in pairs."""
    base_stats, tuned_stats = np.asarray(base_stats), np.asarray(tuned_stats)
    rng = np.random.default_rng(seed)
    n = len(base_stats)
    diffs = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        diffs[b] = statistic(tuned_stats[idx]) - statistic(base_stats[idx])
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    diff = statistic(tuned_stats) - statistic(base_stats)
    return {"diff": float(diff), "low": float(low), "high": float(high)}


def win_tie_loss(base_scores, tuned_scores, epsilon=TIE_EPSILON):
    """Share of examples where the fine-tuned score is higher (win), within epsilon (tie) or lower (loss)."""
    diff = np.asarray(tuned_scores, dtype=float) - np.asarray(base_scores, dtype=float)
    n = max(len(diff), 1)
    return {"win": float((diff >= epsilon).sum() / n), "tie": float((np.abs(diff) < epsilon).sum() / n),
            "loss": float((diff <= -epsilon).sum() / n)}


def summarize_scores(scored, n_resamples=1000, seed=0):
    """Overlap scores and degeneration of both models, bootstrap CIs of the differences, win rate and answer
    lengths (no perplexity)."""
    references = list(scored["reference"])
    summary = {"n_examples": len(scored)}
    bleu_stats = {}
    for side in ("base", "fine_tuned"):
        predictions = list(scored[f"{side}_answer"])
        bleu_stats[side] = bleu_statistics(predictions, references)
        hits = scored[f"{side}_hit_limit"] if f"{side}_hit_limit" in scored else None
        summary[side] = {"bleu": corpus_bleu(predictions, references),
                         **{name: float(scored[f"{side}_{name}"].mean()) for name in ROUGE_TYPES},
                         "mean_words": float(scored[f"{side}_words"].mean()),
                         **{k: v for k, v in degeneration(predictions, hits).items() if v is not None}}
    summary["reference_mean_words"] = float(scored["reference_words"].mean())
    summary["ci95"] = {
        "bleu": paired_bootstrap_ci(bleu_stats["base"], bleu_stats["fine_tuned"], bleu_from_statistics,
                                    n_resamples, seed),
        "rougeL": paired_bootstrap_ci(scored["base_rougeL"], scored["fine_tuned_rougeL"], np.mean, n_resamples, seed),
        "loop_rate": paired_bootstrap_ci([loops(a) for a in scored["base_answer"]],
                                         [loops(a) for a in scored["fine_tuned_answer"]], np.mean, n_resamples, seed),
    }
    summary["win_rate"] = win_tie_loss(scored["base_rougeL"], scored["fine_tuned_rougeL"])
    return summary


def with_perplexity(summary, perplexities, n_examples):
    """The summary with each model's perplexity and the number of examples it was computed on."""
    result = {"n_examples": summary["n_examples"], "n_perplexity_examples": int(n_examples)}
    result.update({key: (dict(value) if isinstance(value, dict) else value) for key, value in summary.items()})
    for side in ("base", "fine_tuned"):
        result[side]["perplexity"] = float(perplexities[side])
    return result


def write_evaluation(scores, scored, out_dir):
    """Write metrics/evaluation_scores.json and metrics/predictions.csv under out_dir; return both paths."""
    metrics = Path(out_dir) / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = metrics / "evaluation_scores.json", metrics / "predictions.csv"
    json_path.write_text(json.dumps(scores, indent=2) + "\n")
    scored.to_csv(csv_path, index=False)
    return json_path, csv_path


# Side-by-side tables that wrap long answers.
def wrapped_table(frame, precision=3):
    """A Styler that shows long answers wrapped and left-aligned instead of truncated."""
    return (frame.style.set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"})
            .format(precision=precision).hide(axis="index"))


def side_by_side(scored, n=5):
    """The first n evaluated questions with reference, both answers and their ROUGE-L."""
    columns = ["question", "reference", "base_answer", "fine_tuned_answer", "base_rougeL", "fine_tuned_rougeL"]
    return scored[columns].head(n).reset_index(drop=True)


# The evaluation table: one row per metric with base, fine-tuned, difference, relative change and
# the CI — shown below and saved as `metrics/evaluation_results.csv` at the end of this section.
def evaluation_results(scores, knowledge=None):
    """The evaluation table: metric, base, fine-tuned, difference, relative change, 95% CI of the difference, n."""
    rows = []
    for metric in ("bleu", "rouge1", "rouge2", "rougeL", "perplexity", "mean_words", *DEGENERATION_METRICS):
        if metric not in scores.get("base", {}):
            continue
        base, tuned = scores["base"][metric], scores["fine_tuned"][metric]
        ci = scores.get("ci95", {}).get(metric, {})
        n = scores.get("n_perplexity_examples") if metric == "perplexity" else scores.get("n_examples")
        rows.append({"metric": metric, "base": base, "fine_tuned": tuned, "difference": tuned - base,
                     "relative_change": (tuned - base) / base if base else float("nan"),
                     "ci95_low": ci.get("low"), "ci95_high": ci.get("high"), "n": n})
    tasks = knowledge.get("tasks", []) if isinstance(knowledge, dict) else knowledge or []
    for task in (t for t in tasks if t.get("status") == "ok"):
        for label, suffix in (("accuracy", ""), ("accuracy raw", "_raw")):
            if task.get(f"base_accuracy{suffix}") is None:
                continue
            base, tuned = task[f"base_accuracy{suffix}"], task[f"fine_tuned_accuracy{suffix}"]
            ci = task.get(f"ci95{suffix}") or {}
            rows.append({"metric": f"{label} ({task['name']})", "base": base, "fine_tuned": tuned,
                         "difference": tuned - base, "relative_change": (tuned - base) / base if base else float("nan"),
                         "ci95_low": ci.get("low"), "ci95_high": ci.get("high"), "n": task.get("n")})
    return pd.DataFrame(rows, columns=["metric", "base", "fine_tuned", "difference", "relative_change",
                                       "ci95_low", "ci95_high", "n"])


# The plots.
def plot_evaluation(scores, path):
    """Base vs fine-tuned overlap scores, differences with 95% CIs, and perplexity; saved to path."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3), gridspec_kw={"width_ratios": [2.2, 1.2, 1]})
    x = np.arange(len(OVERLAP_METRICS))
    for offset, side, color in ((-0.2, "base", "tab:gray"), (0.2, "fine_tuned", "tab:green")):
        values = [scores[side][m] for m in OVERLAP_METRICS]
        bars = axes[0].bar(x + offset, values, width=0.4, color=color, label=side.replace("_", "-"))
        axes[0].bar_label(bars, fmt="%.3f", fontsize=8)
    axes[0].set_xticks(x, [METRIC_LABELS[m] for m in OVERLAP_METRICS])
    axes[0].set_ylim(0, max(0.05, max(scores[s][m] for s in ("base", "fine_tuned") for m in OVERLAP_METRICS)) * 1.15)
    axes[0].set_ylabel("score (0-1) ↑")
    axes[0].set_title(f"Overlap with the reference ({scores['n_examples']} test questions)")
    axes[0].legend()
    names = [m for m in scores["ci95"] if m in METRIC_LABELS]  # the overlap scores; the loop rate is in the table
    diffs = [scores["ci95"][m]["diff"] for m in names]
    errors = [[d - scores["ci95"][m]["low"] for m, d in zip(names, diffs)],
              [scores["ci95"][m]["high"] - d for m, d in zip(names, diffs)]]
    colors = ["tab:green" if d >= 0 else "tab:red" for d in diffs]
    axes[1].bar([METRIC_LABELS[m] for m in names], diffs, yerr=errors, capsize=8, color=colors)
    axes[1].axhline(0, color="black", linewidth=0.8)
    axes[1].set_title("Fine-tuned − base, 95% bootstrap CI")
    ppl = [scores[m]["perplexity"] for m in ("base", "fine_tuned")]
    bars = axes[2].bar(["base", "fine-tuned"], ppl, color=["tab:gray", "tab:green"])
    axes[2].bar_label(bars, fmt="%.2f", fontsize=9)
    axes[2].set_title(f"Perplexity ↓ ({scores['n_perplexity_examples']} test answers)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig


def plot_rouge_differences(scored, path):
    """Histogram of per-example ROUGE-L differences (fine-tuned − base); saved to path."""
    import matplotlib.pyplot as plt

    diff = scored["fine_tuned_rougeL"] - scored["base_rougeL"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(diff, bins=min(30, max(5, len(diff) // 3)), color="tab:green", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1)
    ax.axvline(diff.mean(), color="tab:red", linestyle="--", label=f"mean {diff.mean():+.3f}")
    ax.set_xlabel("ROUGE-L fine-tuned − base (per question)")
    ax.set_ylabel("questions")
    ax.set_title("Where the fine-tune helps (right of 0) and hurts (left)")
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig
