# %% [markdown]
# # 5. Evaluation: BLEU, ROUGE-1/2/L, perplexity; base vs fine-tuned side by side
#
# **What:** the base model and the fine-tuned model answer the same held-out test questions with the
# **same prompt** (system prompt + question, the model's own chat template, exactly as in training) and the
# **same decoding settings**, chosen first on the *validation* split (below), so the only difference between
# the two columns is the LoRA adapter. The base model is the fine-tuned model with its adapter switched off:
# no second copy is loaded.
#
# - **BLEU** (sacreBLEU's corpus BLEU ÷ 100) and **ROUGE-1/2/L** (F-measure with stemming, averaged over
#   examples) compare the generated answers with the reference answers of the first `EVAL_EXAMPLES` test
#   questions.
# - **Perplexity** = exp(mean negative log-likelihood of the *reference* answer tokens given the prompt,
#   prompt tokens excluded), over **all** test examples, computed the same way for both models.
# - **Degeneration**, per answer: does it **loop** (some sequence of 4 words occurs 3 or more times), its
#   **distinct-2** (distinct word pairs ÷ all word pairs; 1 = nothing repeated), and did it **hit
#   `max_new_tokens`** (it was cut off instead of ending its turn). A model that repeats "Fever (usually mild)"
#   until the limit can still score ROUGE points; a reader only sees the loop.
# - **Uncertainty:** a paired bootstrap (1,000 resamples of the test questions) gives a 95% confidence
#   interval for the difference fine-tuned − base in BLEU, ROUGE-L and the loop rate; the win/tie/loss rate
#   counts the questions where the fine-tuned answer has the higher ROUGE-L.
#
# **Why be careful:** BLEU and ROUGE reward *wording* close to the reference, not medical truth. A short
# answer in the reference's style can score well and be wrong; a correct answer phrased differently
# scores poorly. Read the side-by-side answers below before trusting any number.

# %% tags=["lib"]
import collections

import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU
from tqdm.auto import tqdm
from transformers import GenerationConfig

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


# %% [markdown]
# Many questions at once: batched longest prompt first (memory peaks early), answers back in input order.
# `answer_with_both` runs the same questions through the base model (adapter off) and the fine-tuned model.

# %% tags=["lib"]
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


# %% [markdown]
# Degeneration, per answer, on whitespace-separated words: a **loop** is a sequence of 4 words that occurs 3 or
# more times (overlapping occurrences count); **distinct-2** is the share of distinct word pairs.

# %% tags=["lib"]
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
# ### Decoding, chosen on the validation split
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

# %% tags=["lib"]
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


# %% [markdown]
# Running the comparison: each setting answers the same validation questions; the table gets each setting's
# loop rate, cut-off rate, distinct-2, answer length and time next to the rule's columns.

# %% tags=["lib"]
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


# %% [markdown]
# The comparison on the validation split (a few minutes on a CPU: it is timed in the table's `seconds`), then the
# chosen setting, saved with the adapter.

# %%
mark_section(OUT, "5. Evaluation")
decode_frame = splits["val"].head(DECODING_EXAMPLES.get(S["profile"], 24)).reset_index(drop=True)
TRIALS = decoding_trials(ft_model, tokenizer, decode_frame, S["max_new_tokens"], S["gen_batch_size"], seed=S["seed"])
DECODING = decoding_table(TRIALS, seed=S["seed"])
DECODING_CHOICE = DECODING.loc[DECODING["chosen"], "setting"].item()
GENERATION_CONFIG = TRIALS[DECODING_CHOICE]["config"]
write_decoding(DECODING, GENERATION_CONFIG, OUT)
update_run_config(OUT, decoding={"chosen": DECODING_CHOICE, "rule": DECODING_RULE, "validation_questions":
                                 len(decode_frame), "seconds": round(float(DECODING["seconds"].sum()), 1)})
print(f"Chosen on {len(decode_frame)} validation questions: {DECODING_CHOICE} "
      f"({DECODING['seconds'].sum():.0f} s for the {len(DECODING)} settings)")
DECODING[["setting", "rougeL", "rougeL_ci95_low", "rougeL_ci95_high", "within_noise", "loop_rate",
          "hit_max_new_tokens", "distinct_2", "mean_words", "seconds", "chosen"]].round(3)

# %% [markdown]
# Read them as a user would: the first three validation questions, answered greedily and with the chosen setting.

# %%
wrapped_table(pd.DataFrame({"question": decode_frame["question"].head(3), "reference": decode_frame["answer"].head(3),
                            "greedy": TRIALS["greedy"]["answers"][:3],
                            DECODING_CHOICE: TRIALS[DECODING_CHOICE]["answers"][:3]}).drop_duplicates(), precision=3)

# %% [markdown]
# Both models answer the first `EVAL_EXAMPLES` questions of the (already shuffled) test split — the
# same questions in every run with the same `SEED` — with the decoding settings chosen above on the validation
# split, in batches sorted by prompt length; only the new tokens are decoded.

# %%
eval_frame = splits["test"].head(S["eval_examples"]).reset_index(drop=True)
eval_start = time.perf_counter()
predictions = answer_with_both(ft_model, tokenizer, eval_frame["question"], S["max_new_tokens"], S["gen_batch_size"],
                               GENERATION_CONFIG, S["seed"])
predictions.insert(1, "reference", eval_frame["answer"])
scored = example_scores(predictions)
print(f"{len(eval_frame)} questions answered by both models in {time.perf_counter() - eval_start:.0f} s "
      f"(decoding: {DECODING_CHOICE}, at most {S['max_new_tokens']} new tokens)")

# %% [markdown]
# The evaluation table: one row per metric with base, fine-tuned, difference, relative change and
# the CI — shown below and saved as `metrics/evaluation_results.csv` at the end of this section.

# %% tags=["lib"]
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
# ### Side by side: the first five test questions

# %%
wrapped_table(side_by_side(scored, 5))

# %% [markdown]
# ### Five fixed demonstration questions
#
# Common conditions, treatments and drugs, the same in every run — none of them is scored, they show
# the change in style and content at a glance.

# %%
demo_answers = answer_with_both(ft_model, tokenizer, DEMO_QUESTIONS, S["max_new_tokens"], S["gen_batch_size"],
                               GENERATION_CONFIG, S["seed"])
wrapped_table(demo_answers[["question", "base_answer", "fine_tuned_answer"]])

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
# 1. **Held-out answer discrimination** (always, offline too), on every test question (up to `MC_MAX_ITEMS`):
#    each gets its own answer and `K` distractors — the answers of *other* test questions that share the most
#    content words with it (Jaccard overlap; never the correct answer or a duplicate of it, equal overlaps
#    ordered by a seeded shuffle), the correct one put at a seeded random position. All candidates are in the
#    data set's style, so a style-only gain shows up as **no** gain here. Each candidate is scored two ways,
#    given the chat prompt exactly as the training loss sees it: by its **mean log-likelihood per answer token**
#    (length-normalised, lm-evaluation-harness's `acc_norm` idea; the headline number) and by its **summed
#    log-likelihood** (raw, the harness's `acc` idea, which favours short candidates).
# 2. **Public medical benchmarks in the standard format**, when the hub is reachable: MedMCQA (validation,
#    Apache-2.0) and MedQA-USMLE-4-options (test, CC BY-SA 4.0) with **lm-evaluation-harness's own prompt and
#    scoring** (tasks `medmcqa` and `medqa_4options`, 0-shot): the question with its options lettered A–D, then
#    "Answer:", no chat template; the model's choice is the letter `" A"` … `" D"` with the highest
#    log-likelihood (`acc`; the four continuations have the same length, so `acc_norm` is the same number). So
#    the numbers sit next to published ones — quoted below with their source, and clearly not ours. A seeded
#    subset of `MC_BENCHMARK_ITEMS` questions per task keeps the time bounded. Offline both are skipped and
#    recorded as skipped; `tests/data/` holds project-written files in the same two formats for the tests.
#
# The held-out task's **ties** (scores within `MC_TIE_TOLERANCE` of the best) are shared: an item whose correct
# answer ties with `t − 1` others counts `1/t`, which is the expected accuracy of breaking the tie at random,
# so a model that cannot tell the candidates apart scores exactly chance; the recorded choice is the
# lowest-numbered tied option. The harness tasks take numpy's `argmax` (the first of the best), as the harness
# does. Accuracy is compared on the same items with a paired bootstrap 95% CI; its width says how large a
# change the number of items could have shown.

# %% tags=["lib"]
MC_K = 3  # distractors per held-out question
MC_TIE_TOLERANCE = 1e-6  # scores closer than this to the best count as tied
MC_MAX_ANSWER_TOKENS = 256  # long candidates are scored on their first tokens only (time and memory bound)
MC_MAX_ITEMS = 500  # at most this many held-out questions: the whole test split of every profile
MC_BENCHMARK_ITEMS = {"gpu": 1000, "gpu-large": 1000, "cpu": 100, "smoke": 20}  # per harness task, seeded subset
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
# The project's own multiple-choice test file (`tests/data/mc_sample.jsonl`): one `{question, options, answer}`
# object a line, each checked, with a message that names the line of a bad one.

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


# %% [markdown]
# ### The lm-evaluation-harness letter format
#
# The prompts are built exactly as the harness builds them (its source is quoted next to each function), the
# continuation is the harness's default target delimiter `" "` plus the letter, and the pair is tokenised as
# its `_encode_pair` does: the whole text and the context are encoded with the tokenizer's defaults and the
# continuation is what the whole has beyond the context. Published numbers in this format, **not measured by
# this project**, are kept with their source so the report can set ours beside them.

# %% tags=["lib"]
HARNESS_SOURCE = ("EleutherAI/lm-evaluation-harness, commit 4e7e0d4 (2026-08-21): lm_eval/tasks/medmcqa/medmcqa.yaml "
                  "and utils_medmcqa.py, lm_eval/tasks/medqa/medqa.yaml and preprocess_medqa.py; requests as in "
                  "lm_eval/api/task.py (construct_requests), tokenised as in lm_eval/api/model.py (_encode_pair)")
HARNESS_TASKS = {
    "MedMCQA": {"name": "MedMCQA", "harness_task": "medmcqa", "hub_id": "openlifescienceai/medmcqa",
                "split": "validation", "licence": "Apache-2.0", "kind": "benchmark", "format": "harness"},
    "MedQA-4-options": {"name": "MedQA-4-options", "harness_task": "medqa_4options",
                        "hub_id": "GBaker/MedQA-USMLE-4-options-hf", "split": "test", "licence": "CC BY-SA 4.0",
                        "kind": "benchmark", "format": "harness"},
}
MEDMCQA = HARNESS_TASKS["MedMCQA"]
LETTERS = ("A", "B", "C", "D")
TARGET_DELIMITER = " "  # the harness's default: the continuations are " A", " B", " C", " D"
PUBLISHED_SOURCE = ("https://huggingface.co/datasets/openlifescienceai/results/blob/35b682d02b091b170a2238806985166cd3f8"
                    "78e8/TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T/results_2024-05-24%2017%3A53%3A20.359555"
                    ".json")
PUBLISHED_MC = [  # NOT OURS: the Open Medical-LLM Leaderboard's lm-evaluation-harness results (0-shot, acc)
    {"model": "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", "task": "MedMCQA", "accuracy": 0.2658,
     "stderr": 0.0068, "split": "validation (all questions)", "source": PUBLISHED_SOURCE},
    {"model": "TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T", "task": "MedQA-4-options", "accuracy": 0.2341,
     "stderr": 0.0119, "split": "test (all questions)", "source": PUBLISHED_SOURCE},
]


def medmcqa_prompt(doc):
    """MedMCQA as lm-evaluation-harness asks it (utils_medmcqa.doc_to_text): question, choices A–D, 'Answer:'."""
    # The harness's template, lm_eval/tasks/medmcqa/utils_medmcqa.py:
    #     prompt = "Question: " + doc["question"] + "\nChoices:\n"
    #     for choice, option in option_choices.items():
    #         prompt += f"{choice.upper()}. {option}\n"
    #     prompt += "Answer:"
    options = "".join(f"{letter}. {doc[key]}\n" for letter, key in zip(LETTERS, ("opa", "opb", "opc", "opd")))
    return "Question: " + doc["question"] + "\nChoices:\n" + options + "Answer:"


def medqa_prompt(doc):
    """MedQA-USMLE-4-options as lm-evaluation-harness asks it (preprocess_medqa.doc_to_text)."""
    # The harness's template, lm_eval/tasks/medqa/preprocess_medqa.py:
    #     answers = "".join((f"{k}. {v}\n") for k, v in option_choices.items())
    #     return f"Question: {doc['sent1']}\n{answers}Answer:"
    answers = "".join(f"{letter}. {doc[f'ending{i}']}\n" for i, letter in enumerate(LETTERS))
    return f"Question: {doc['sent1']}\n{answers}Answer:"


HARNESS_DOCS = {  # task -> (prompt, question field, option fields, answer field): the data sets' own schemas
    "MedMCQA": (medmcqa_prompt, "question", ("opa", "opb", "opc", "opd"), "cop"),
    "MedQA-4-options": (medqa_prompt, "sent1", ("ending0", "ending1", "ending2", "ending3"), "label"),
}


# %% [markdown]
# Items of a harness task from rows in the data set's own schema: the hub's rows online, or a project-written
# file in the same format (`tests/data/medmcqa_format_sample.jsonl`, `tests/data/medqa_format_sample.jsonl`).

# %% tags=["lib"]
def harness_item(task, doc, where):
    """One item of a harness task: its harness prompt, the question, the four options and the answer index."""
    prompt, question, option_keys, answer_key = HARNESS_DOCS[task]
    answer = doc.get(answer_key)
    if not isinstance(doc.get(question), str) or any(not isinstance(doc.get(k), str) for k in option_keys):
        raise ValueError(f"{where}: needs the text fields {question!r} and {', '.join(map(repr, option_keys))}.")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(option_keys):
        raise ValueError(f"{where}: {answer_key!r} must be the 0-based index of the correct option (0..3).")
    return {"question": doc[question], "options": [doc[k] for k in option_keys], "answer": answer,
            "prompt": prompt(doc)}


def harness_items(task, rows, n, seed=0):
    """n items drawn with seed from a harness task's rows (all of them when there are fewer)."""
    rows = list(rows)
    picked = np.random.default_rng(seed).permutation(len(rows))[:n]
    return [harness_item(task, rows[i], f"{HARNESS_TASKS[task]['hub_id']} row {int(i)}") for i in picked]


def medmcqa_items(rows, n, seed=0):
    """n MedMCQA items drawn with seed from rows (question, opa..opd, cop = index of the correct option)."""
    return harness_items("MedMCQA", rows, n, seed)


def read_harness_file(path, task):
    """All items of a .jsonl file written in a harness task's own schema (one data-set row per line)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [harness_item(task, row, f"{path}:{number}") for number, row in enumerate(rows, start=1)]


def load_public_mc(online, n, seed=0, task="MedMCQA"):
    """(items, None) for a harness task's split from the hub, or (None, reason) when it cannot be loaded."""
    if not online:
        return None, "the Hugging Face hub is unreachable (offline run)"
    info = HARNESS_TASKS[task]
    try:
        from datasets import load_dataset
        return harness_items(task, load_dataset(info["hub_id"], split=info["split"]), n, seed), None
    except Exception as error:  # noqa: BLE001 - any hub failure means the benchmark is skipped, with the reason
        return None, f"could not load {info['hub_id']}: {type(error).__name__}: {error}"


# %% [markdown]
# Scoring: the log-likelihood of each continuation given its context, in left-padded batches that keep only
# the logits they need; requests with the same context and a one-token continuation (the harness's letters)
# share one forward pass, as in the harness. Held-out options are scored after the chat prompt; the harness's
# letters after its plain-text prompt.

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


def continuation_loglikelihoods(model, tokenizer, requests, batch_size=8):
    """Summed log-probability and token count of each continuation given its context: [(sum, count)] for
    requests [(context ids, continuation ids)]; one forward pass per distinct context + continuation[:-1]."""
    inputs = {}  # the tokens fed to the model -> the requests they answer
    for index, (context, continuation) in enumerate(requests):
        inputs.setdefault(tuple(context) + tuple(continuation[:-1]), []).append((index, list(continuation)))
    rows = sorted(inputs.items(), key=lambda row: len(row[0]))  # similar lengths together: little padding
    results = [None] * len(requests)
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            keep = max(len(c) for _, wanted in batch for _, c in wanted)  # left padding: continuations end last
            ids = torch.tensor([[pad] * (width - len(row)) + list(row) for row, _ in batch])
            mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row, _ in batch])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                           use_cache=False, logits_to_keep=keep).logits.float()
            logprobs = torch.log_softmax(logits[:, -keep:], dim=-1).cpu()
            for row, (_, wanted) in enumerate(batch):
                for index, continuation in wanted:
                    scored = logprobs[row, keep - len(continuation):].gather(-1, torch.tensor(continuation)[:, None])
                    results[index] = (float(scored.sum()), len(continuation))
    return results


def per_item(results, owners, items):
    """Regroup per-request (sum, count) results into one (sums, counts) pair of arrays per item."""
    grouped = [(np.zeros(len(item["options"])), np.zeros(len(item["options"]))) for item in items]
    for (item, option), (total, count) in zip(owners, results):
        grouped[item][0][option], grouped[item][1][option] = total, count
    return grouped


def option_loglikelihoods(model, tokenizer, items, batch_size=8, max_answer_tokens=MC_MAX_ANSWER_TOKENS):
    """Summed log-likelihood and answer-token count of each option given its chat prompt: [(sums, counts)]."""
    requests, owners = [], []
    for i, item in enumerate(items):
        for o, (ids, n) in enumerate(encode_options(tokenizer, item, max_answer_tokens)):
            requests.append((ids[:len(ids) - n], ids[len(ids) - n:]))
            owners.append((i, o))
    return per_item(continuation_loglikelihoods(model, tokenizer, requests, batch_size), owners, items)


def option_scores(model, tokenizer, items, batch_size=8, max_answer_tokens=MC_MAX_ANSWER_TOKENS):
    """Mean log-likelihood per answer token of each option given its chat prompt: one array per item."""
    return [sums / counts for sums, counts in option_loglikelihoods(model, tokenizer, items, batch_size,
                                                                    max_answer_tokens)]


def choice_and_credit(scores, answer, tolerance=MC_TIE_TOLERANCE):
    """The chosen option (lowest index among the best) and the credit: 1/ties when the answer is among the best."""
    scores = np.asarray(scores, dtype=float)
    best = np.flatnonzero(scores >= scores.max() - tolerance)
    return int(best[0]), (1.0 / len(best) if answer in best else 0.0)


# %% [markdown]
# The harness's requests for one item — context and continuation, tokenised as `_encode_pair` does — and its
# choice: the letter with the highest summed log-likelihood, the first one on a tie (numpy's `argmax`).

# %% tags=["lib"]
def harness_requests(tokenizer, context, choices=LETTERS, delimiter=TARGET_DELIMITER):
    """(context ids, continuation ids) for each choice, built and tokenised as lm-evaluation-harness does."""
    # lm_eval/api/task.py, construct_requests: arguments = [(ctx, f"{target_delimiter}{cont}") for cont in choices]
    # lm_eval/api/model.py, _encode_pair: trailing spaces of the context move to the continuation; then
    #     whole_enc = self.tok_encode(context + continuation); context_enc = self.tok_encode(context)
    #     continuation_enc = whole_enc[len(context_enc):]   (tok_encode: the tokenizer's own special-token default)
    requests = []
    for choice in choices:
        text, continuation = context, f"{delimiter}{choice}"
        spaces = len(text) - len(text.rstrip())
        if spaces:
            text, continuation = text[:-spaces], text[-spaces:] + continuation
        whole, head = tokenizer.encode(text + continuation), tokenizer.encode(text)
        requests.append((head, whole[len(head):]))
    return requests


def letter_loglikelihoods(model, tokenizer, items, batch_size=8):
    """Summed log-likelihood of " A" … " D" after each item's harness prompt (no chat template): [(sums, counts)]."""
    requests, owners = [], []
    for i, item in enumerate(items):
        for o, request in enumerate(harness_requests(tokenizer, item["prompt"], LETTERS[:len(item["options"])])):
            requests.append(request)
            owners.append((i, o))
    return per_item(continuation_loglikelihoods(model, tokenizer, requests, batch_size), owners, items)


def harness_choice(loglikelihoods, answer):
    """The harness's choice (numpy argmax: the first of the best) and its credit, 1.0 or 0.0 (`acc`)."""
    choice = int(np.argmax(np.asarray(loglikelihoods, dtype=float)))
    return choice, float(choice == answer)


# %% [markdown]
# Both models on the same items, per-item rows and the task record.

# %% tags=["lib"]
KNOWLEDGE_ITEM_COLUMNS = ("task", "question", "options", "correct", "base_choice", "fine_tuned_choice", "base_credit",
                          "fine_tuned_credit", "base_scores", "fine_tuned_scores", "base_raw_choice",
                          "fine_tuned_raw_choice", "base_raw_credit", "fine_tuned_raw_credit")
TIE_RULE = (f"options within {MC_TIE_TOLERANCE:g} of the best score tie; an item whose correct option ties with t-1 "
            "others earns 1/t (the expected accuracy of a random tie-break); the recorded choice is the lowest tied "
            "index. The lm-evaluation-harness tasks take the first of the best (numpy argmax), as the harness does")


def score_both(model, tokenizer, items, batch_size=8, scorer=None):
    """(sums, counts) of every option for the base model (adapter disabled) and the fine-tuned model."""
    scorer = scorer or option_loglikelihoods
    with model.disable_adapter():
        base = scorer(model, tokenizer, items, batch_size)
    return base, scorer(model, tokenizer, items, batch_size)


def side_columns(side, item, sums, counts, harness):
    """One model's columns for one item: the headline choice, credit and scores, and the raw (sum) choice/credit."""
    rounded = lambda values: json.dumps([round(float(v), 5) for v in values])  # noqa: E731
    if harness:  # the harness's acc: the summed log-likelihood of the letter, first of the best
        choice, credit = harness_choice(sums, item["answer"])
        return {f"{side}_choice": choice, f"{side}_credit": credit, f"{side}_scores": rounded(sums),
                f"{side}_raw_choice": None, f"{side}_raw_credit": None}
    choice, credit = choice_and_credit(sums / counts, item["answer"])  # length-normalised: the headline
    raw_choice, raw_credit = choice_and_credit(sums, item["answer"])
    return {f"{side}_choice": choice, f"{side}_credit": credit, f"{side}_scores": rounded(sums / counts),
            f"{side}_raw_choice": raw_choice, f"{side}_raw_credit": raw_credit}


def knowledge_item_rows(task, items, base, tuned, harness=False):
    """Per-item rows: question, options, correct index, and each model's choices, credits and scores."""
    rows = []
    for item, (base_sums, base_counts), (tuned_sums, tuned_counts) in zip(items, base, tuned):
        rows.append({"task": task, "question": item["question"], "options": json.dumps(item["options"]),
                     "correct": item["answer"], **side_columns("base", item, base_sums, base_counts, harness),
                     **side_columns("fine_tuned", item, tuned_sums, tuned_counts, harness)})
    return pd.DataFrame(rows).reindex(columns=list(KNOWLEDGE_ITEM_COLUMNS))


def task_record(info, rows, seconds, n_resamples=1000, seed=0):
    """One task's record: accuracies (mean credit; raw too where scored), chance, paired bootstrap 95% CI of the
    difference and its width, seconds."""
    n_options = rows["options"].map(lambda o: len(json.loads(o)))
    ci = paired_bootstrap_ci(rows["base_credit"], rows["fine_tuned_credit"], np.mean, n_resamples, seed)
    record = {**info, "status": "ok", "reason": None, "n": len(rows), "k": int(n_options.max() - 1),
              "chance": float((1 / n_options).mean()), "base_accuracy": float(rows["base_credit"].mean()),
              "fine_tuned_accuracy": float(rows["fine_tuned_credit"].mean()), "ci95": ci,
              "ci95_width": ci["high"] - ci["low"], "seconds": round(float(seconds), 2)}
    raw = rows.get("base_raw_credit")
    if raw is not None and raw.notna().all():
        record.update(base_accuracy_raw=float(raw.mean()),
                      fine_tuned_accuracy_raw=float(rows["fine_tuned_raw_credit"].mean()),
                      ci95_raw=paired_bootstrap_ci(raw.astype(float), rows["fine_tuned_raw_credit"].astype(float),
                                                   np.mean, n_resamples, seed))
    return record


def skipped_record(info, reason, k=None):
    """The record of a task that did not run, with the reason."""
    return {**info, "status": "skipped", "reason": reason, "n": 0, "k": k, "chance": None, "base_accuracy": None,
            "fine_tuned_accuracy": None, "ci95": None, "seconds": 0.0}


# %% [markdown]
# A whole task — both models, the rows, the record — and the files.

# %% tags=["lib"]
def run_mc_task(model, tokenizer, info, items, batch_size=8, seed=0):
    """Score items with both models (the harness's way for a harness task); return (task record, per-item rows)."""
    harness = info.get("format") == "harness"
    start = time.perf_counter()
    base, tuned = score_both(model, tokenizer, items, batch_size, letter_loglikelihoods if harness else None)
    rows = knowledge_item_rows(info["name"], items, base, tuned, harness)
    return task_record(info, rows, time.perf_counter() - start, seed=seed), rows


def write_knowledge(records, rows, out_dir, tie_rule):
    """Write metrics/knowledge_eval.json and metrics/knowledge_items.csv under out_dir; return both paths."""
    metrics = Path(out_dir) / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = metrics / "knowledge_eval.json", metrics / "knowledge_items.csv"
    payload = {"scoring": "held-out answers: mean log-likelihood per answer token given the chat prompt (acc_norm), "
                          "and the summed log-likelihood (raw); harness tasks: lm-evaluation-harness's prompt and acc",
               "tie_rule": tie_rule, "harness_source": HARNESS_SOURCE, "published": PUBLISHED_MC,
               "seconds": round(sum(r["seconds"] for r in records), 2), "tasks": records,
               "summary": knowledge_summary(records)}
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    frame = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    frame = frame.reindex(columns=list(KNOWLEDGE_ITEM_COLUMNS))
    frame.to_csv(csv_path, index=False)
    return json_path, csv_path


# %% [markdown]
# The paragraphs that say what the numbers mean, and which published numbers they sit beside (not ours).

# %% tags=["lib"]
def verdict(record, low, high):
    """The sentence ending that reads a task's CI of the difference, in plain words."""
    heldout = record.get("kind") == "heldout"
    if low > 0:
        return ("excludes zero: the fine-tune taught the model to tell right answers from wrong ones in the "
                "data set's own style, which style alone cannot explain." if heldout else
                "excludes zero: the fine-tuned model knows more here, not less.")
    if high < 0:
        return ("lies below zero: the fine-tuned model tells right answers from wrong ones *worse* than "
                "the base model." if heldout else
                "lies below zero: the fine-tune made the model forget some of the medical knowledge it had.")
    return ("includes zero: no measurable gain in knowledge, so whatever BLEU, ROUGE and perplexity gained "
            "above is style rather than knowledge." if heldout else
            "includes zero: no measurable forgetting, and no measurable gain either.")


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
            f"The 95 % CI of the difference, [{low:+.0f}, {high:+.0f}] points, ") + verdict(record, low, high)
    if record.get("format") == "harness":
        text += (f" Prompt and scoring are lm-evaluation-harness's (`{record.get('harness_task')}`, 0-shot, `acc`), "
                 "on a seeded subset of the split.")
    if record.get("base_accuracy_raw") is not None:
        text += (f" Scored by the summed log-likelihood instead (raw, which favours short candidates): "
                 f"{100 * record['fine_tuned_accuracy_raw']:.0f} % against {100 * record['base_accuracy_raw']:.0f} %.")
    if record.get("ci95_width") is not None:
        text += (f" The interval is {100 * record['ci95_width']:.0f} points wide: with {record['n']} items, a change "
                 "smaller than about half that could not be told from chance variation.")
    return text


def published_paragraph(published):
    """What the harness tasks compare with: the published numbers, their model and source, marked as not ours."""
    if not published:
        return ""
    numbers = "; ".join(f"{p['task']} {100 * p['accuracy']:.1f} % (± {100 * p['stderr']:.1f} standard error, "
                        f"{p['split']})" for p in published)
    models = sorted({p["model"] for p in published})
    return (f"**Published for comparison — not measured by this project:** lm-evaluation-harness, 0-shot, `acc`, for "
            f"`{'`, `'.join(models)}` (the base TinyLlama-1.1B, not the chat model the `gpu` profile fine-tunes): "
            f"{numbers}; chance is 25 %. Source: the Open Medical-LLM Leaderboard's results file, "
            f"{published[0]['source']}. No published result in this format was found for SmolLM2-135M-Instruct "
            "(the `cpu` profile's model).")


def knowledge_summary(records):
    """All tasks' paragraphs as one Markdown text, with the published numbers the harness tasks compare with."""
    paragraphs = [knowledge_paragraph(record) for record in records]
    if any(r.get("format") == "harness" for r in records):
        paragraphs.append(published_paragraph(PUBLISHED_MC))
    return "\n\n".join(paragraphs)


# %% [markdown]
# The plot: both models' accuracy per task against chance, and the difference with its CI.

# %% tags=["lib"]
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

# %% [markdown]
# The two public benchmarks in lm-evaluation-harness's format (skipped, with the reason, when the hub is out of reach).

# %%
for task_name, task_info in HARNESS_TASKS.items():
    benchmark_info = {**task_info, "source": task_info["hub_id"]}
    benchmark_items, skip_reason = load_public_mc(ONLINE, MC_BENCHMARK_ITEMS.get(S["profile"], 100), S["seed"],
                                                  task=task_name)
    if benchmark_items is None:
        announce(f"{task_name} skipped: {skip_reason}.")
        knowledge_records.append(skipped_record(benchmark_info, skip_reason, k=3))
        continue
    record, rows = run_mc_task(ft_model, tokenizer, benchmark_info, benchmark_items, S["eval_batch_size"], S["seed"])
    knowledge_records.append(record)
    knowledge_rows.append(rows)
    print(f"{task_name}: {record['n']} questions in {record['seconds']:.0f} s")
write_knowledge(knowledge_records, knowledge_rows, OUT, TIE_RULE)
plot_knowledge(knowledge_records, OUT / "visualizations" / "knowledge_accuracy.png")
print("Saved metrics/knowledge_eval.json, metrics/knowledge_items.csv and visualizations/knowledge_accuracy.png")

# %% [markdown]
# **What it means** (generated from the numbers above), and the evaluation table with the knowledge
# accuracies added — saved as `metrics/evaluation_results.csv`:

# %%
display(Markdown(knowledge_summary(knowledge_records)))
EVALUATION = evaluation_results(scores, knowledge_records)
EVALUATION.to_csv(OUT / "metrics" / "evaluation_results.csv", index=False)
EVALUATION.round(4)
