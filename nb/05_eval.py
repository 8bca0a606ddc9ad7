# %% [markdown]
# # 5. Evaluation: BLEU, ROUGE-1/2/L, perplexity; base vs fine-tuned side by side
#
# **What:** the base model and the fine-tuned model answer the same held-out test questions with the
# **same prompt** (system prompt + question, the model's own chat template, exactly as in training) and
# **greedy decoding**, so the only difference between the two columns is the LoRA adapter. The base model
# is the fine-tuned model with its adapter switched off: no second copy is loaded.
#
# - **BLEU** (sacreBLEU's corpus BLEU ÷ 100) and **ROUGE-1/2/L** (F-measure with stemming, averaged over
#   examples) compare the generated answers with the reference answers of the first `EVAL_EXAMPLES` test
#   questions.
# - **Perplexity** = exp(mean negative log-likelihood of the *reference* answer tokens given the prompt,
#   prompt tokens excluded), over **all** test examples, computed the same way for both models.
# - **Uncertainty:** a paired bootstrap (1,000 resamples of the test questions) gives a 95% confidence
#   interval for the difference fine-tuned − base in BLEU and ROUGE-L; the win/tie/loss rate counts the
#   questions where the fine-tuned answer has the higher ROUGE-L.
#
# **Why be careful:** BLEU and ROUGE reward *wording* close to the reference, not medical truth. A short
# answer in the reference's style can score well and be wrong; a correct answer phrased differently
# scores poorly. Read the side-by-side answers below before trusting any number.

# %% tags=["lib"]
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from tqdm.auto import tqdm

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
OVERLAP_METRICS = ("bleu",) + ROUGE_TYPES
METRIC_LABELS = {"bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
PREDICTION_COLUMNS = ["question", "reference", "base_answer", "fine_tuned_answer",
                      "base_rougeL", "fine_tuned_rougeL", "base_bleu", "fine_tuned_bleu",
                      "base_rouge1", "fine_tuned_rouge1", "base_rouge2", "fine_tuned_rouge2",
                      "base_words", "fine_tuned_words", "reference_words"]
TIE_EPSILON = 1e-9  # per-example ROUGE-L differences smaller than this count as ties
DEMO_QUESTIONS = [
    "What is the first-line medication for type 2 diabetes?",
    "What are the typical symptoms of appendicitis?",
    "How does aspirin work?",
    "How is strep throat treated?",
    "What is hypertension?",
]


def generate_batch(model, tokenizer, prompts, max_new_tokens):
    """Greedy continuations of a batch of tokenized prompts (left-padded), decoded without the prompt."""
    device = next(model.parameters()).device
    encoded = tokenizer.pad({"input_ids": [list(p) for p in prompts]}, padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(input_ids=encoded["input_ids"].to(device),
                                attention_mask=encoded["attention_mask"].to(device),
                                max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                                pad_token_id=tokenizer.pad_token_id)
    new_tokens = output[:, encoded["input_ids"].shape[1]:]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def generate_answers(model, tokenizer, questions, max_new_tokens, batch_size, desc="generating"):
    """Greedy answers to questions with the training chat prompt, batched by length, in input order."""
    questions = list(questions)
    prompts = [tokenizer.apply_chat_template(build_messages(q), add_generation_prompt=True, tokenize=True,
                                             return_dict=False) for q in questions]
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # longest first: memory peaks early
    answers = [None] * len(prompts)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    model.eval()
    progress = tqdm(total=len(order), desc=desc, unit="question", disable=not progress_bars_wanted())

    def run_batch(batch):
        """Answer one batch of question indices and record the answers in place."""
        texts = generate_batch(model, tokenizer, [prompts[i] for i in batch], max_new_tokens)
        for i, text in zip(batch, texts):
            answers[i] = text
        progress.update(len(batch))

    try:
        in_halving_batches(order, batch_size, run_batch)  # a CUDA out-of-memory halves the batch and retries
    finally:
        tokenizer.padding_side = padding_side
        progress.close()
    return answers


def answer_with_both(model, tokenizer, questions, max_new_tokens, batch_size):
    """Answers of the base model (adapter disabled) and the fine-tuned model, as a frame."""
    questions = list(questions)
    with model.disable_adapter():
        base = generate_answers(model, tokenizer, questions, max_new_tokens, batch_size, desc="base model")
    tuned = generate_answers(model, tokenizer, questions, max_new_tokens, batch_size, desc="fine-tuned model")
    return pd.DataFrame({"question": questions, "base_answer": base, "fine_tuned_answer": tuned})


# %% [markdown]
# Scores per example: sacreBLEU and ROUGE (with stemming) against the reference, and answer lengths;
# perplexity from the summed answer-token negative log-likelihood.

# %% tags=["lib"]
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
    """Per-example ROUGE-1/2/L, sentence BLEU and word counts of base and fine-tuned answers vs the reference."""
    scored = frame[["question", "reference", "base_answer", "fine_tuned_answer"]].copy()
    for side in ("base", "fine_tuned"):
        predictions = list(scored[f"{side}_answer"])
        rouge = rouge_f_scores(predictions, scored["reference"])
        scored[f"{side}_rougeL"] = rouge["rougeL"]
        scored[f"{side}_bleu"] = sentence_bleus(predictions, scored["reference"])
        scored[f"{side}_rouge1"] = rouge["rouge1"]
        scored[f"{side}_rouge2"] = rouge["rouge2"]
    for column in ("base_answer", "fine_tuned_answer", "reference"):
        scored[column.replace("_answer", "") + "_words"] = scored[column].map(word_count)
    return scored[PREDICTION_COLUMNS]


# %% [markdown]
# Both models answer the first `EVAL_EXAMPLES` questions of the (already shuffled) test split — the
# same questions in every run with the same `SEED`. Answers are generated greedily, in batches sorted by
# prompt length, and only the new tokens are decoded.

# %%
mark_section(OUT, "5. Evaluation")
eval_frame = splits["test"].head(S["eval_examples"]).reset_index(drop=True)
eval_start = time.perf_counter()
predictions = answer_with_both(ft_model, tokenizer, eval_frame["question"], S["max_new_tokens"], S["gen_batch_size"])
predictions.insert(1, "reference", eval_frame["answer"])
scored = example_scores(predictions)
print(f"{len(eval_frame)} questions answered by both models in {time.perf_counter() - eval_start:.0f} s")

# %% [markdown]
# Uncertainty: a paired bootstrap over the test questions gives a 95% CI for each difference, and
# the win/tie/loss rate counts per-question ROUGE-L wins.

# %% tags=["lib"]
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
    """Overlap scores of both models, bootstrap CIs of the differences, win rate and answer lengths (no perplexity)."""
    references = list(scored["reference"])
    summary = {"n_examples": len(scored)}
    bleu_stats = {}
    for side in ("base", "fine_tuned"):
        predictions = list(scored[f"{side}_answer"])
        bleu_stats[side] = bleu_statistics(predictions, references)
        summary[side] = {"bleu": corpus_bleu(predictions, references),
                         **{name: float(scored[f"{side}_{name}"].mean()) for name in ROUGE_TYPES},
                         "mean_words": float(scored[f"{side}_words"].mean())}
    summary["reference_mean_words"] = float(scored["reference_words"].mean())
    summary["ci95"] = {
        "bleu": paired_bootstrap_ci(bleu_stats["base"], bleu_stats["fine_tuned"], bleu_from_statistics,
                                    n_resamples, seed),
        "rougeL": paired_bootstrap_ci(scored["base_rougeL"], scored["fine_tuned_rougeL"], np.mean, n_resamples, seed),
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


# %% [markdown]
# The evaluation table: one row per metric with base, fine-tuned, difference, relative change and
# the CI — shown below and saved as `metrics/evaluation_results.csv` at the end of this section.

# %% tags=["lib"]
def evaluation_results(scores, knowledge=None):
    """The evaluation table: metric, base, fine-tuned, difference, relative change, 95% CI of the difference, n."""
    rows = []
    for metric in ("bleu", "rouge1", "rouge2", "rougeL", "perplexity", "mean_words"):
        if metric not in scores.get("base", {}):
            continue
        base, tuned = scores["base"][metric], scores["fine_tuned"][metric]
        ci = scores.get("ci95", {}).get(metric, {})
        n = scores.get("n_perplexity_examples") if metric == "perplexity" else scores.get("n_examples")
        rows.append({"metric": metric, "base": base, "fine_tuned": tuned, "difference": tuned - base,
                     "relative_change": (tuned - base) / base if base else float("nan"),
                     "ci95_low": ci.get("low"), "ci95_high": ci.get("high"), "n": n})
    tasks = knowledge.get("tasks", []) if isinstance(knowledge, dict) else knowledge or []
    for task in tasks:
        if task.get("status") == "ok":
            base, tuned, ci = task["base_accuracy"], task["fine_tuned_accuracy"], task.get("ci95") or {}
            rows.append({"metric": f"accuracy ({task['name']})", "base": base, "fine_tuned": tuned,
                         "difference": tuned - base, "relative_change": (tuned - base) / base if base else float("nan"),
                         "ci95_low": ci.get("low"), "ci95_high": ci.get("high"), "n": task.get("n")})
    return pd.DataFrame(rows, columns=["metric", "base", "fine_tuned", "difference", "relative_change",
                                       "ci95_low", "ci95_high", "n"])


# %% [markdown]
# Perplexity of the reference answers over **all** test examples, then the scores, bootstrap CIs and
# win rate. Everything is written to `metrics/evaluation_scores.json` and `metrics/predictions.csv`.

# %%
PERPLEXITIES = model_perplexities(ft_model, tokenizer, splits["test"], S["eval_batch_size"])
scores = with_perplexity(summarize_scores(scored, seed=S["seed"]), PERPLEXITIES, len(splits["test"]))
write_evaluation(scores, scored, OUT)
print(f"Fine-tuned wins on {scores['win_rate']['win']:.0%}, ties on {scores['win_rate']['tie']:.0%} and loses on "
      f"{scores['win_rate']['loss']:.0%} of the questions (per-question ROUGE-L). Mean answer length: base "
      f"{scores['base']['mean_words']:.0f}, fine-tuned {scores['fine_tuned']['mean_words']:.0f}, reference "
      f"{scores['reference_mean_words']:.0f} words.")
evaluation_results(scores).round(4)

# %% [markdown]
# Side-by-side tables that wrap long answers.

# %% tags=["lib"]
def wrapped_table(frame, precision=3):
    """A Styler that shows long answers wrapped and left-aligned instead of truncated."""
    return (frame.style.set_properties(**{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"})
            .format(precision=precision).hide(axis="index"))


def side_by_side(scored, n=5):
    """The first n evaluated questions with reference, both answers and their ROUGE-L."""
    columns = ["question", "reference", "base_answer", "fine_tuned_answer", "base_rougeL", "fine_tuned_rougeL"]
    return scored[columns].head(n).reset_index(drop=True)


# %% [markdown]
# ### Side by side: the first five test questions

# %%
wrapped_table(side_by_side(scored, 5))

# %% [markdown]
# ### Five fixed demonstration questions
#
# Common conditions, treatments and drugs, the same in every run — none of them is scored, they show
# the change in style and content at a glance.

# %%
demo_answers = answer_with_both(ft_model, tokenizer, DEMO_QUESTIONS, S["max_new_tokens"], S["gen_batch_size"])
wrapped_table(demo_answers)

# %% [markdown]
# The plots.

# %% tags=["lib"]
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
    names = list(scores["ci95"])
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


# %% [markdown]
# ### Plots

# %%
plot_evaluation(scores, OUT / "visualizations" / "evaluation_comparison.png")
plot_rouge_differences(scored, OUT / "visualizations" / "rougeL_differences.png")
print("Saved visualizations/evaluation_comparison.png and visualizations/rougeL_differences.png")

# %% [markdown]
# ### Knowledge or only style? Likelihood-scored multiple choice
#
# BLEU, ROUGE and perplexity reward answers that *sound* like the references. To see whether the
# fine-tune taught the model anything, both models choose between answers instead of writing one:
#
# 1. **Held-out answer discrimination** (always, offline too): every test question gets its own answer and
#    `K` distractors — the answers of *other* test questions that share the most content words with it
#    (Jaccard overlap; never the correct answer or a duplicate of it, equal overlaps ordered by a seeded
#    shuffle), the correct one put at a seeded random position. All candidates are in the data set's style,
#    so a style-only gain shows up as **no** gain here.
# 2. **A public medical benchmark** (MedMCQA validation, Apache-2.0) when the hub is reachable, so a drop
#    would show forgetting. Offline it is skipped and recorded as skipped.
#
# Each candidate is scored by the model's **mean log-likelihood per answer token** given the chat prompt,
# exactly as the training loss sees it (lm-evaluation-harness's `acc_norm` idea); the highest score is the
# model's choice. **Ties** (scores within `MC_TIE_TOLERANCE` of the best) are shared: an item whose correct
# answer ties with `t − 1` others counts `1/t`, which is the expected accuracy of breaking the tie at random,
# so a model that cannot tell the candidates apart scores exactly chance; the recorded choice is the
# lowest-numbered tied option. Accuracy is compared on the same items with a paired bootstrap 95% CI.

# %% tags=["lib"]
MC_K = 3  # distractors per held-out question
MC_TIE_TOLERANCE = 1e-6  # scores closer than this to the best count as tied
MC_MAX_ANSWER_TOKENS = 256  # long candidates are scored on their first tokens only (time and memory bound)
MC_MAX_ITEMS = 500  # at most this many held-out questions
MC_BENCHMARK_ITEMS = {"gpu": 300, "cpu": 100, "smoke": 20}
MEDMCQA = {"name": "MedMCQA", "hub_id": "openlifescienceai/medmcqa", "split": "validation",
           "licence": "Apache-2.0", "kind": "benchmark"}
MC_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being it its this that these "
    "those which who whom what when where why how can could may might will would should do does did not no if "
    "than then there their they them you your he she his her we our us i me my have has had also such other".split())


def content_words(text):
    """Lower-cased words of a text without stop words and one-letter tokens, as a set."""
    return {w for w in re.findall(r"[a-z0-9]+", str(text).lower()) if len(w) > 1 and w not in MC_STOPWORDS}


def jaccard(a, b):
    """Jaccard similarity of two sets (0 when both are empty)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def distinct_answer_count(answers):
    """Number of answers that differ after normalisation (case, spaces, punctuation ignored)."""
    return len({question_key(a) for a in answers})


def choose_distractors(answers, k=MC_K, seed=0):
    """For each answer, the k most word-overlapping other answers (indices), none a duplicate of it or each other."""
    keys = [question_key(a) for a in answers]
    words = [content_words(a) for a in answers]
    tiebreak = np.random.default_rng(seed).permutation(len(answers))  # seeded order among equal overlaps
    chosen_all = []
    for i in range(len(answers)):
        ranked = sorted((j for j in range(len(answers)) if keys[j] != keys[i]),
                        key=lambda j: (-jaccard(words[i], words[j]), tiebreak[j]))
        chosen, seen = [], {keys[i]}
        for j in ranked:
            if len(chosen) == k:
                break
            if keys[j] not in seen:
                chosen.append(j)
                seen.add(keys[j])
        if len(chosen) < k:
            raise ValueError(f"Answer {i} has only {len(chosen)} distinct other answers, K={k} needs {k}: "
                             "use a smaller K or more test questions.")
        chosen_all.append(chosen)
    return chosen_all


def discrimination_items(frame, k=MC_K, seed=0):
    """Multiple-choice items from a question/answer frame: each answer among k distractors, at a seeded position."""
    answers = list(frame["answer"])
    rng = np.random.default_rng(seed + 1)
    items = []
    for question, answer, others in zip(frame["question"], answers, choose_distractors(answers, k, seed)):
        options = [answers[j] for j in others]
        position = int(rng.integers(0, k + 1))
        options.insert(position, answer)
        items.append({"question": question, "options": options, "answer": position})
    return items


# %% [markdown]
# Multiple-choice files: the project's own test file and, online, MedMCQA's validation split.

# %% tags=["lib"]
def validate_mc_item(row, where):
    """A clean {question, options, answer} item, or a ValueError that says what is wrong at `where`."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with question, options, answer; got {type(row).__name__}.")
    question, options, answer = row.get("question"), row.get("options"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string.")
    if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o.strip() for o in options):
        raise ValueError(f"{where}: 'options' must be a list of at least 2 non-empty strings.")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
        raise ValueError(f"{where}: 'answer' must be the 0-based index of the correct option (0..{len(options) - 1}).")
    return {"question": question.strip(), "options": [o.strip() for o in options], "answer": answer}


def read_mc_file(path):
    """Multiple-choice items from a .jsonl file with one {question, options, answer index} object a line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Multiple-choice file not found: {path}")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not valid JSON ({error.msg}).") from None
            items.append(validate_mc_item(row, f"{path}:{number}"))
    if not items:
        raise ValueError(f"{path} holds no multiple-choice items.")
    return items


def medmcqa_items(rows, n, seed=0):
    """n items drawn with seed from MedMCQA rows (question, opa..opd, cop = index of the correct option)."""
    rows = list(rows)
    picked = np.random.default_rng(seed).permutation(len(rows))[:n]
    return [validate_mc_item({"question": rows[i]["question"], "answer": int(rows[i]["cop"]),
                              "options": [rows[i][key] for key in ("opa", "opb", "opc", "opd")]},
                             f"{MEDMCQA['hub_id']} row {int(i)}") for i in picked]


def load_public_mc(online, n, seed=0):
    """(items, None) for MedMCQA's validation split from the hub, or (None, reason) when it cannot be loaded."""
    if not online:
        return None, "the Hugging Face hub is unreachable (offline run)"
    try:
        from datasets import load_dataset
        rows = load_dataset(MEDMCQA["hub_id"], split=MEDMCQA["split"])
        return medmcqa_items(rows, n, seed), None
    except Exception as error:  # noqa: BLE001 - any hub failure means the benchmark is skipped, with the reason
        return None, f"could not load {MEDMCQA['hub_id']}: {type(error).__name__}: {error}"


# %% [markdown]
# Scoring: the mean log-likelihood per answer token of each option given the chat prompt.

# %% tags=["lib"]
def encode_options(tokenizer, item, max_answer_tokens=MC_MAX_ANSWER_TOKENS):
    """(token ids, number of answer tokens) of prompt + each option, as encode_for_loss builds them."""
    rows = []
    for option in item["options"]:
        encoded = encode_for_loss(tokenizer, item["question"], option)
        n_prompt = sum(label == -100 for label in encoded["labels"])
        ids = encoded["input_ids"][:n_prompt + max_answer_tokens]
        rows.append((ids, len(ids) - n_prompt))
    return rows


def option_scores(model, tokenizer, items, batch_size=8, max_answer_tokens=MC_MAX_ANSWER_TOKENS):
    """Mean log-likelihood per answer token of each option given its chat prompt: one array per item."""
    rows = [(i, o, ids, n) for i, item in enumerate(items)
            for o, (ids, n) in enumerate(encode_options(tokenizer, item, max_answer_tokens))]
    rows.sort(key=lambda row: len(row[2]))  # similar lengths together: little padding
    scores = [np.zeros(len(item["options"])) for item in items]
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width, keep = max(len(r[2]) for r in batch), max(r[3] for r in batch)
            # left padding: every answer ends at the last position, so only the last keep + 1 logits are needed
            ids = torch.tensor([[pad] * (width - len(r[2])) + list(r[2]) for r in batch])
            mask = torch.tensor([[0] * (width - len(r[2])) + [1] * len(r[2]) for r in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                           use_cache=False, logits_to_keep=keep + 1).logits.float()
            token_logprobs = torch.log_softmax(logits[:, :-1], dim=-1).gather(
                -1, ids[:, -keep:].to(device)[..., None]).squeeze(-1).cpu()
            in_answer = torch.arange(keep)[None, :] >= keep - torch.tensor([r[3] for r in batch])[:, None]
            means = (token_logprobs * in_answer).sum(-1) / in_answer.sum(-1)
            for (i, o, _, _), value in zip(batch, means.tolist()):
                scores[i][o] = value
    return scores


def choice_and_credit(scores, answer, tolerance=MC_TIE_TOLERANCE):
    """The chosen option (lowest index among the best) and the credit: 1/ties when the answer is among the best."""
    scores = np.asarray(scores, dtype=float)
    best = np.flatnonzero(scores >= scores.max() - tolerance)
    return int(best[0]), (1.0 / len(best) if answer in best else 0.0)


# %% [markdown]
# Both models on the same items, per-item rows, the task record and the files.

# %% tags=["lib"]
KNOWLEDGE_ITEM_COLUMNS = ("task", "question", "options", "correct", "base_choice", "fine_tuned_choice", "base_credit",
                          "fine_tuned_credit", "base_scores", "fine_tuned_scores")
TIE_RULE = (f"options within {MC_TIE_TOLERANCE:g} of the best score tie; an item whose correct option ties with t-1 "
            "others earns 1/t (the expected accuracy of a random tie-break); the recorded choice is the lowest tied "
            "index")


def score_both(model, tokenizer, items, batch_size=8):
    """Option scores of the base model (adapter disabled) and of the fine-tuned model on the same items."""
    with model.disable_adapter():
        base = option_scores(model, tokenizer, items, batch_size)
    return base, option_scores(model, tokenizer, items, batch_size)


def knowledge_item_rows(task, items, base_scores, tuned_scores):
    """Per-item rows: question, options, correct index, each model's choice, credit and option scores."""
    rows = []
    for item, base, tuned in zip(items, base_scores, tuned_scores):
        base_choice, base_credit = choice_and_credit(base, item["answer"])
        tuned_choice, tuned_credit = choice_and_credit(tuned, item["answer"])
        rows.append({"task": task, "question": item["question"], "options": json.dumps(item["options"]),
                     "correct": item["answer"], "base_choice": base_choice, "fine_tuned_choice": tuned_choice,
                     "base_credit": base_credit, "fine_tuned_credit": tuned_credit,
                     "base_scores": json.dumps([round(float(s), 5) for s in base]),
                     "fine_tuned_scores": json.dumps([round(float(s), 5) for s in tuned])})
    return pd.DataFrame(rows)


def task_record(info, rows, seconds, n_resamples=1000, seed=0):
    """One task's record: accuracies (mean credit), chance, paired bootstrap 95% CI of the difference, seconds."""
    n_options = rows["options"].map(lambda o: len(json.loads(o)))
    return {**info, "status": "ok", "reason": None, "n": len(rows), "k": int(n_options.max() - 1),
            "chance": float((1 / n_options).mean()), "base_accuracy": float(rows["base_credit"].mean()),
            "fine_tuned_accuracy": float(rows["fine_tuned_credit"].mean()),
            "ci95": paired_bootstrap_ci(rows["base_credit"], rows["fine_tuned_credit"], np.mean, n_resamples, seed),
            "seconds": round(float(seconds), 2)}


def skipped_record(info, reason, k=None):
    """The record of a task that did not run, with the reason."""
    return {**info, "status": "skipped", "reason": reason, "n": 0, "k": k, "chance": None, "base_accuracy": None,
            "fine_tuned_accuracy": None, "ci95": None, "seconds": 0.0}


def run_mc_task(model, tokenizer, info, items, batch_size=8, seed=0):
    """Score items with both models; return (task record, per-item rows)."""
    start = time.perf_counter()
    base, tuned = score_both(model, tokenizer, items, batch_size)
    rows = knowledge_item_rows(info["name"], items, base, tuned)
    return task_record(info, rows, time.perf_counter() - start, seed=seed), rows


def write_knowledge(records, rows, out_dir, tie_rule):
    """Write metrics/knowledge_eval.json and metrics/knowledge_items.csv under out_dir; return both paths."""
    metrics = Path(out_dir) / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = metrics / "knowledge_eval.json", metrics / "knowledge_items.csv"
    payload = {"scoring": "mean log-likelihood per answer token given the chat prompt (acc_norm)",
               "tie_rule": tie_rule, "seconds": round(sum(r["seconds"] for r in records), 2), "tasks": records}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(KNOWLEDGE_ITEM_COLUMNS))
    frame.to_csv(csv_path, index=False)
    return json_path, csv_path


# %% [markdown]
# The paragraph that says what the numbers mean, and the plot.

# %% tags=["lib"]
def knowledge_paragraph(record):
    """A plain-words Markdown paragraph on what one task's accuracies and CI mean, generated from the numbers."""
    name = f"**{record['name']}** ({record['split']})"
    if record["status"] != "ok":
        return f"{name} was skipped: {record['reason']}."
    base, tuned, chance = (100 * record[key] for key in ("base_accuracy", "fine_tuned_accuracy", "chance"))
    low, high = 100 * record["ci95"]["low"], 100 * record["ci95"]["high"]
    text = (f"{name}: on {record['n']} questions with {record['k'] + 1} candidate answers each, the fine-tuned model "
            f"picked the right answer on {tuned:.0f} % against {base:.0f} % for the base model "
            f"(chance {chance:.0f} %). "
            f"The 95 % CI of the difference, [{low:+.0f}, {high:+.0f}] points, ")
    heldout = record.get("kind") == "heldout"
    if low > 0:
        return text + ("excludes zero: the fine-tune taught the model to tell right answers from wrong ones in the "
                       "data set's own style, which style alone cannot explain." if heldout else
                       "excludes zero: the fine-tuned model knows more here, not less.")
    if high < 0:
        return text + ("lies below zero: the fine-tuned model tells right answers from wrong ones *worse* than "
                       "the base model." if heldout else
                       "lies below zero: the fine-tune made the model forget some of the medical knowledge it had.")
    return text + ("includes zero: no measurable gain in knowledge, so whatever BLEU, ROUGE and perplexity gained "
                   "above is style rather than knowledge." if heldout else
                   "includes zero: no measurable forgetting, and no measurable gain either.")


def knowledge_summary(records):
    """All tasks' paragraphs as one Markdown text."""
    return "\n\n".join(knowledge_paragraph(record) for record in records)


def plot_knowledge(records, path):
    """Accuracy of both models per task with the chance level, and the difference with its 95% CI; saved to path."""
    import matplotlib.pyplot as plt

    done = [r for r in records if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
    x = np.arange(len(done))
    for offset, side, color in ((-0.2, "base", "tab:gray"), (0.2, "fine_tuned", "tab:green")):
        bars = axes[0].bar(x + offset, [r[f"{side}_accuracy"] for r in done], width=0.4, color=color,
                           label=side.replace("_", "-"))
        axes[0].bar_label(bars, fmt="%.2f", fontsize=8)
    for i, record in enumerate(done):
        axes[0].hlines(record["chance"], i - 0.45, i + 0.45, colors="black", linestyles="--",
                       label="chance" if i == 0 else None)
    labels = [f"{r['name']}\n(n={r['n']}, K={r['k']})" for r in done]
    axes[0].set_xticks(x, labels)
    axes[0].set_ylim(0, 1)
    axes[0].set_ylabel("accuracy ↑")
    axes[0].set_title("Right answer picked by likelihood")
    axes[0].legend(fontsize=8)
    diffs = [r["ci95"]["diff"] for r in done]
    errors = [[d - r["ci95"]["low"] for r, d in zip(done, diffs)], [r["ci95"]["high"] - d for r, d in zip(done, diffs)]]
    axes[1].bar(labels, diffs, yerr=errors, capsize=8, color=["tab:green" if d >= 0 else "tab:red" for d in diffs])
    axes[1].axhline(0, color="black", linewidth=0.8)
    axes[1].set_title("Fine-tuned − base, 95% bootstrap CI")
    skipped = [f"{r['name']} skipped: {r['reason']}" for r in records if r["status"] != "ok"]
    if skipped:
        fig.text(0.01, 0.01, "\n".join(skipped), fontsize=7, color="dimgray")
    fig.tight_layout(rect=(0, 0.06 if skipped else 0, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig


# %% [markdown]
# The held-out items come from the test split (at most `MC_MAX_ITEMS` questions); when it has too few
# distinct answers for `MC_K` distractors, `K` shrinks and the change is announced. Base and fine-tuned
# model score the same items.

# %%
knowledge_records, knowledge_rows = [], []
heldout_info = {"name": "held-out answers", "split": "test", "licence": None, "kind": "heldout", "source": DATA_NAME}
heldout_frame = splits["test"].head(MC_MAX_ITEMS)
heldout_k = min(MC_K, distinct_answer_count(heldout_frame["answer"]) - 1)
if heldout_k < 1:
    announce("Held-out answer discrimination skipped: the test split has fewer than 2 distinct answers.")
    knowledge_records.append(skipped_record(heldout_info, "fewer than 2 distinct test answers"))
else:
    if heldout_k < MC_K:
        announce(f"Only {heldout_k + 1} distinct test answers: {heldout_k} distractors per question instead of {MC_K}.")
    heldout_items = discrimination_items(heldout_frame, heldout_k, S["seed"])
    record, rows = run_mc_task(ft_model, tokenizer, heldout_info, heldout_items, S["eval_batch_size"], S["seed"])
    knowledge_records.append(record)
    knowledge_rows.append(rows)
    print(f"Held-out discrimination: {record['n']} questions × {heldout_k + 1} candidates in {record['seconds']:.0f} s")

# %%
benchmark_info = {key: MEDMCQA[key] for key in ("name", "split", "licence", "kind")} | {"source": MEDMCQA["hub_id"]}
benchmark_items, skip_reason = load_public_mc(ONLINE, MC_BENCHMARK_ITEMS.get(S["profile"], 100), S["seed"])
if benchmark_items is None:
    announce(f"{MEDMCQA['name']} skipped: {skip_reason}.")
    knowledge_records.append(skipped_record(benchmark_info, skip_reason, k=3))
else:
    record, rows = run_mc_task(ft_model, tokenizer, benchmark_info, benchmark_items, S["eval_batch_size"], S["seed"])
    knowledge_records.append(record)
    knowledge_rows.append(rows)
    print(f"{MEDMCQA['name']}: {record['n']} questions in {record['seconds']:.0f} s")
write_knowledge(knowledge_records, knowledge_rows, OUT, TIE_RULE)
plot_knowledge(knowledge_records, OUT / "visualizations" / "knowledge_accuracy.png")
print("Saved metrics/knowledge_eval.json, metrics/knowledge_items.csv and visualizations/knowledge_accuracy.png")

# %% [markdown]
# **What it means** (generated from the numbers above), and the evaluation table with the held-out
# accuracy added — saved as `metrics/evaluation_results.csv`:

# %%
display(Markdown(knowledge_summary(knowledge_records)))
EVALUATION = evaluation_results(scores, knowledge_records)
EVALUATION.to_csv(OUT / "metrics" / "evaluation_results.csv", index=False)
EVALUATION.round(4)
