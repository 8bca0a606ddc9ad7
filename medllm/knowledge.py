"""Likelihood-scored multiple choice: held-out answer discrimination and public benchmarks."""


import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .data import encode_for_loss, question_key
from .evaluate import paired_bootstrap_ci

# Knowledge or only style? Likelihood-scored multiple choice
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


# The lm-evaluation-harness letter format
#
# The prompts are built exactly as the harness builds them (its source is quoted next to each function), the
# continuation is the harness's default target delimiter `" "` plus the letter, and the pair is tokenised as
# its `_encode_pair` does: the whole text and the context are encoded with the tokenizer's defaults and the
# continuation is what the whole has beyond the context. Published numbers in this format, **not measured by
# this project**, are kept with their source so the report can set ours beside them.
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


# Items of a harness task from rows in the data set's own schema: the hub's rows online, or a project-written
# file in the same format (`tests/data/medmcqa_format_sample.jsonl`, `tests/data/medqa_format_sample.jsonl`).
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


# Scoring: the log-likelihood of each continuation given its context, in left-padded batches that keep only
# the logits they need; requests with the same context and a one-token continuation (the harness's letters)
# share one forward pass, as in the harness. Held-out options are scored after the chat prompt; the harness's
# letters after its plain-text prompt.
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


# The harness's requests for one item — context and continuation, tokenised as `_encode_pair` does — and its
# choice: the letter with the highest summed log-likelihood, the first one on a tie (numpy's `argmax`).
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


# Both models on the same items, per-item rows and the task record.
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


# A whole task — both models, the rows, the record — and the files.
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


# The paragraphs that say what the numbers mean, and which published numbers they sit beside (not ours).
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


# The plot: both models' accuracy per task against chance, and the difference with its CI.
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
