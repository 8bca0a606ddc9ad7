"""Section 5, issue 11: likelihood-scored multiple choice (held-out answers, a benchmark file), base vs fine-tuned."""

import contextlib
import math
import json
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT

MC_SAMPLE = ROOT / "tests" / "data" / "mc_sample.jsonl"


class BiasLM(torch.nn.Module):
    """A fake causal LM whose next-token logits ignore the context: +10 on `preferred` tokens, 0 elsewhere.

    With its adapter disabled every logit is 0, so every token has the same log-probability (a uniform model).
    """

    def __init__(self, vocab_size, preferred=()):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size), requires_grad=False)
        self.bias.data[sorted(set(preferred))] = 10.0
        self.adapter_on = True
        self.calls = []

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False, logits_to_keep=0):
        self.calls.append(tuple(input_ids.shape))
        keep = logits_to_keep or input_ids.shape[1]
        bias = self.bias if self.adapter_on else torch.zeros_like(self.bias)
        return types.SimpleNamespace(logits=bias.expand(input_ids.shape[0], keep, -1))

    @contextlib.contextmanager
    def disable_adapter(self):
        """Switch the preference off inside the block, as PeftModel.disable_adapter does with the LoRA layers."""
        self.adapter_on = False
        try:
            yield
        finally:
            self.adapter_on = True


def answer_token_ids(lib, tokenizer, question, answer):
    """The answer tokens (end-of-turn tokens included) that encode_for_loss puts after the prompt."""
    encoded = lib.encode_for_loss(tokenizer, question, answer)
    return [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != -100]


def oracle_model(lib, tokenizer, items):
    """A BiasLM that prefers every token of every correct answer; checks each distractor has some other token."""
    preferred = {t for item in items for t in answer_token_ids(lib, tokenizer, item["question"],
                                                               item["options"][item["answer"]])}
    for item in items:
        for index, option in enumerate(item["options"]):
            if index != item["answer"]:
                assert set(answer_token_ids(lib, tokenizer, item["question"], option)) - preferred, option
    return BiasLM(len(tokenizer), preferred)


def read_mc_file(path):
    """The project-written multiple-choice items in a .jsonl file: one {question, options, answer index} a line."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def test_sample_file_holds_four_option_items(lib):
    items = read_mc_file(MC_SAMPLE)
    assert len(items) == 12
    assert all(len(item["options"]) == 4 and 0 <= item["answer"] < 4 for item in items)
    assert sorted({item["answer"] for item in items}) == [0, 1, 2, 3]


def test_medmcqa_rows_become_items(lib):
    rows = [{"question": f"q{i}", "opa": "A", "opb": "B", "opc": "C", "opd": "D", "cop": i % 4} for i in range(10)]
    items = lib.medmcqa_items(rows, 6, seed=3)
    assert len(items) == 6 and len({item["question"] for item in items}) == 6
    assert all(item["options"] == ["A", "B", "C", "D"] for item in items)
    assert all(item["answer"] == int(item["question"][1:]) % 4 for item in items)
    assert items == lib.medmcqa_items(rows, 6, seed=3)


def test_offline_benchmark_is_skipped_with_reason(lib):
    items, reason = lib.load_public_mc(False, 10)
    assert items is None and "unreachable" in reason


ANSWERS = [
    "Metformin lowers blood glucose in type 2 diabetes.",
    "metformin lowers BLOOD glucose in type 2 diabetes",  # a near-duplicate of answer 0
    "Insulin lowers blood glucose in type 1 diabetes.",
    "Aspirin inhibits cyclooxygenase and platelets.",
    "Appendicitis causes pain in the right lower abdomen.",
    "Sulfonylureas lower blood glucose by releasing insulin.",
    "Strep throat is treated with penicillin.",
]


def test_distractors_are_deterministic_hard_and_never_the_answer(lib):
    keys = [lib.question_key(a) for a in ANSWERS]
    chosen = lib.choose_distractors(ANSWERS, k=3, seed=7)
    assert chosen == lib.choose_distractors(ANSWERS, k=3, seed=7)
    for i, others in enumerate(chosen):
        assert len(others) == 3 and i not in others
        assert keys[i] not in {keys[j] for j in others}  # never the answer or a duplicate of it
        assert len({keys[j] for j in others}) == 3  # no two distractors are duplicates either
    assert chosen[0][:2] == [2, 5]  # the most overlapping answers come first
    assert 1 not in chosen[0] and 0 not in chosen[1]


def test_equal_overlaps_are_ordered_by_the_seed(lib):
    answers = [f"answer {i}" for i in range(12)]  # every pair shares one word
    orders = {tuple(lib.choose_distractors(answers, k=3, seed=seed)[0]) for seed in range(6)}
    assert len(orders) > 1


def test_too_few_distinct_answers_is_a_clear_error(lib):
    with pytest.raises(ValueError, match="only 1 distinct other answers, K=3"):
        lib.choose_distractors(["Aspirin.", "aspirin", "Metformin"], k=3)
    assert lib.distinct_answer_count(["Aspirin.", "aspirin", "Metformin"]) == 2


def test_discrimination_items_hold_the_answer_at_a_seeded_position(lib):
    frame = pd.DataFrame({"question": [f"q{i}" for i in range(len(ANSWERS))], "answer": ANSWERS})
    items = lib.discrimination_items(frame, k=3, seed=0)
    assert items == lib.discrimination_items(frame, k=3, seed=0)
    for item, answer in zip(items, ANSWERS):
        assert len(item["options"]) == 4 and item["options"][item["answer"]] == answer
        assert sum(lib.question_key(o) == lib.question_key(answer) for o in item["options"]) == 1
    assert len({item["answer"] for item in items}) > 1


def test_choice_and_credit_share_ties(lib):
    assert lib.choice_and_credit([-1.0, -0.5, -2.0], 1) == (1, 1.0)
    assert lib.choice_and_credit([-1.0, -0.5, -2.0], 0) == (1, 0.0)
    assert lib.choice_and_credit([-1.0, -1.0 + 1e-9, -3.0, -1.0], 3) == (0, pytest.approx(1 / 3))
    assert lib.choice_and_credit([-2.0, -2.0, -2.0, -2.0], 2) == (0, 0.25)


def test_model_that_prefers_the_right_answer_scores_100_and_uniform_scores_chance(lib, tokenizer):
    items = read_mc_file(MC_SAMPLE)
    model = oracle_model(lib, tokenizer, items)
    record, rows = lib.run_mc_task(model, tokenizer, {"name": "sample", "split": "all", "licence": None}, items,
                                   batch_size=5)
    assert record["status"] == "ok" and record["n"] == 12 and record["k"] == 3
    assert record["fine_tuned_accuracy"] == 1.0
    assert (rows["fine_tuned_choice"] == rows["correct"]).all()
    assert record["chance"] == 0.25 and record["base_accuracy"] == pytest.approx(0.25)  # all ties → exactly chance
    assert (rows["base_choice"] == 0).all() and (rows["base_credit"] == 0.25).all()
    ci = record["ci95"]
    assert ci["diff"] == pytest.approx(0.75) and ci["low"] <= ci["diff"] <= ci["high"]
    assert max(shape[0] for shape in model.calls) == 5  # batched, not one row at a time


def test_heldout_items_from_a_frame_with_an_oracle(lib, tokenizer):
    frame = pd.DataFrame({"question": [f"What about case {i}?" for i in range(len(ANSWERS))], "answer": ANSWERS})
    frame = frame.drop(index=1).reset_index(drop=True)  # no near-duplicates left: every answer is its own class
    items = lib.discrimination_items(frame, k=3, seed=1)
    for item in items:  # the answers share words, so each item gets its own oracle
        scores = lib.option_scores(oracle_model(lib, tokenizer, [item]), tokenizer, [item], batch_size=4)
        assert int(np.argmax(scores[0])) == item["answer"]


def test_batched_scores_equal_one_by_one_and_answer_nll(lib, embedded_model):
    model, tokenizer = embedded_model
    items = [read_mc_file(MC_SAMPLE)[5]]  # options of different token lengths: the batch is left-padded
    batched = lib.option_scores(model, tokenizer, items, batch_size=4)
    single = lib.option_scores(model, tokenizer, items, batch_size=1)
    np.testing.assert_allclose(batched[0], single[0], atol=1e-4)
    frame = pd.DataFrame({"question": [items[0]["question"]] * 4, "answer": items[0]["options"]})
    for option in (0, 1):
        total, count = lib.answer_nll(model, tokenizer, frame.iloc[[option]], batch_size=1)
        assert batched[0][option] == pytest.approx(-total / count, abs=1e-4)


def test_long_options_are_cut_to_max_answer_tokens(lib, tokenizer):
    item = {"question": "Why?", "options": ["word " * 400, "short"], "answer": 1}
    rows = lib.encode_options(tokenizer, item, max_answer_tokens=16)
    assert rows[0][1] == 16 and rows[1][1] < 16


def test_untrained_adapter_scores_like_the_base_model(lib, peft_model, tokenizer):
    items = [{"question": "Which organ produces bile?", "options": ["Liver", "Spleen"], "answer": 0}]
    base, tuned = lib.score_both(peft_model, tokenizer, items, batch_size=2)
    np.testing.assert_allclose(base[0], tuned[0], atol=1e-5)  # LoRA B starts at zero


def record(lib, base_credits, tuned_credits, kind="heldout"):
    """A task record from given per-item credits (4 options each)."""
    n = len(base_credits)
    rows = pd.DataFrame({"options": [json.dumps(["a", "b", "c", "d"])] * n, "base_credit": base_credits,
                         "fine_tuned_credit": tuned_credits})
    info = {"name": "held-out answers", "split": "test", "licence": None, "kind": kind}
    return lib.task_record(info, rows, seconds=1.234, n_resamples=500)


def test_task_record_ci_contains_the_observed_difference(lib):
    rec = record(lib, [1, 0, 0, 1, 0, 0.25, 1, 0], [1, 1, 0, 1, 1, 0.25, 0, 1])
    assert rec["base_accuracy"] == pytest.approx(3.25 / 8) and rec["fine_tuned_accuracy"] == pytest.approx(5.25 / 8)
    assert rec["ci95"]["diff"] == pytest.approx(0.25)
    assert rec["ci95"]["low"] <= rec["ci95"]["diff"] <= rec["ci95"]["high"]
    assert rec["k"] == 3 and rec["chance"] == 0.25 and rec["seconds"] == 1.23


def test_paragraph_states_the_verdict_from_the_numbers(lib):
    flat = lib.knowledge_paragraph(record(lib, [1, 0] * 20, [1, 0] * 19 + [1, 1]))
    assert "52 % against 50 % for the base model (chance 25 %)" in flat
    assert "includes zero" in flat and "style rather than knowledge" in flat
    better = lib.knowledge_paragraph(record(lib, [0] * 40, [1] * 40))
    assert "excludes zero" in better and "[+100, +100]" in better
    worse = lib.knowledge_paragraph(record(lib, [1] * 40, [0] * 40, kind="benchmark"))
    assert "forget" in worse
    skipped = lib.knowledge_paragraph(lib.skipped_record({"name": "MedMCQA", "split": "validation"}, "offline"))
    assert skipped == "**MedMCQA** (validation) was skipped: offline."


def test_outputs_table_and_plot(lib, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    rows = pd.DataFrame({"task": "held-out answers", "question": ["q1", "q2"], "options": [json.dumps(["a", "b"])] * 2,
                         "correct": [0, 1], "base_choice": [0, 0], "fine_tuned_choice": [0, 1],
                         "base_credit": [1.0, 0.0],
                         "fine_tuned_credit": [1.0, 1.0], "base_scores": ["[-1, -2]"] * 2,
                         "fine_tuned_scores": ["[-1, -2]", "[-2, -1]"]})
    info = {"name": "held-out answers", "split": "test", "licence": None, "kind": "heldout"}
    records = [lib.task_record(info, rows, 2.0, n_resamples=100),
               lib.skipped_record({**lib.MEDMCQA}, "the Hugging Face hub is unreachable (offline run)", k=3)]
    json_path, csv_path = lib.write_knowledge(records, [rows], tmp_path, lib.TIE_RULE)
    written = json.loads(json_path.read_text())
    assert [t["status"] for t in written["tasks"]] == ["ok", "skipped"] and written["seconds"] == 2.0
    assert written["tasks"][1]["licence"] == "Apache-2.0" and "1/t" in written["tie_rule"]
    assert list(pd.read_csv(csv_path).columns) == list(lib.KNOWLEDGE_ITEM_COLUMNS)
    path = tmp_path / "visualizations" / "knowledge_accuracy.png"
    lib.plot_knowledge(records, path)
    assert path.stat().st_size > 1000
    scores = {"n_examples": 2, "base": {"bleu": 0.1, "perplexity": 9.0}, "fine_tuned": {"bleu": 0.2, "perplexity": 8.0},
              "ci95": {"bleu": {"diff": 0.1, "low": -0.1, "high": 0.3}}}
    table = lib.evaluation_results(scores, records).set_index("metric")
    assert list(table.index) == ["bleu", "perplexity", "accuracy (held-out answers)"]
    accuracy = table.loc["accuracy (held-out answers)"]
    assert accuracy["fine_tuned"] == 1.0 and accuracy["difference"] == 0.5 and accuracy["n"] == 2
    assert accuracy["ci95_low"] <= 0.5 <= accuracy["ci95_high"]
    assert list(lib.evaluation_results(scores)["metric"]) == ["bleu", "perplexity"]


# Issue 19: the held-out task scored two ways, and lm-evaluation-harness's letter format for MedMCQA and MedQA.

MEDMCQA_SAMPLE = ROOT / "tests" / "data" / "medmcqa_format_sample.jsonl"
MEDQA_SAMPLE = ROOT / "tests" / "data" / "medqa_format_sample.jsonl"


def test_heldout_task_reports_raw_and_length_normalised_accuracy(lib, tokenizer):
    items = read_mc_file(MC_SAMPLE)
    model = oracle_model(lib, tokenizer, items)
    record, rows = lib.run_mc_task(model, tokenizer, {"name": "sample", "split": "all", "licence": None,
                                                      "kind": "heldout"}, items, batch_size=8)
    assert record["fine_tuned_accuracy"] == 1.0 and record["fine_tuned_accuracy_raw"] == 1.0
    # The base model is uniform: every token has log-probability -log V, so the mean ties every option (chance),
    # while the sum prefers the option with the fewest tokens. Expected by hand from the token counts:
    expected = []
    for item in items:
        counts = np.array([n for _, n in lib.encode_options(tokenizer, item)])
        shortest = np.flatnonzero(counts == counts.min())
        expected.append(1 / len(shortest) if item["answer"] in shortest else 0.0)
    assert record["base_accuracy"] == pytest.approx(0.25)
    assert record["base_accuracy_raw"] == pytest.approx(np.mean(expected)) and record["base_accuracy_raw"] != 0.25
    assert rows["base_raw_credit"].tolist() == pytest.approx(expected)
    assert record["ci95_raw"]["diff"] == pytest.approx(1.0 - np.mean(expected))
    assert record["ci95_width"] == pytest.approx(record["ci95"]["high"] - record["ci95"]["low"])
    text = lib.knowledge_paragraph(record)
    assert "Scored by the summed log-likelihood instead" in text and "points wide: with 12 items" in text


def test_harness_prompts_are_the_harness_templates(lib):
    doc = json.loads(MEDMCQA_SAMPLE.read_text().splitlines()[0])
    assert lib.medmcqa_prompt(doc) == ("Question: Which vitamin deficiency causes beriberi?\nChoices:\n"
                                       "A. Vitamin B1 (thiamine)\nB. Vitamin B12\nC. Vitamin C\nD. Vitamin D\nAnswer:")
    doc = json.loads(MEDQA_SAMPLE.read_text().splitlines()[3])
    assert lib.medqa_prompt(doc) == ("Question: A 30-year-old woman takes an overdose of paracetamol. Which treatment "
                                     "should be given?\nA. Atropine\nB. Naloxone\nC. Flumazenil\nD. N-acetylcysteine\n"
                                     "Answer:")


def test_harness_requests_split_the_tokens_as_encode_pair_does(lib, tokenizer):
    prompt = lib.medmcqa_prompt(json.loads(MEDMCQA_SAMPLE.read_text().splitlines()[1]))
    requests = lib.harness_requests(tokenizer, prompt)
    assert len(requests) == 4 and all(context == tokenizer.encode(prompt) for context, _ in requests)
    for (context, continuation), letter in zip(requests, "ABCD"):
        assert context + continuation == tokenizer.encode(prompt + " " + letter) and len(continuation) == 1
        assert tokenizer.decode(continuation) == " " + letter
    (context, continuation), *_ = lib.harness_requests(tokenizer, "Answer: ")  # a trailing space moves over
    assert context == tokenizer.encode("Answer:") and context + continuation == tokenizer.encode("Answer:  A")


def test_letter_scorer_against_a_hand_computed_example(lib, tokenizer):
    items = lib.read_harness_file(MEDMCQA_SAMPLE, "MedMCQA")
    assert [item["answer"] for item in items] == [0, 1, 2, 3, 0, 1]
    letters = [lib.harness_requests(tokenizer, items[0]["prompt"])[i][1][0] for i in range(4)]
    model = BiasLM(len(tokenizer))
    model.bias.data[letters[1]], model.bias.data[letters[2]] = 2.0, 1.0  # " B" e^2, " C" e^1, every other token e^0
    log_z = math.log(len(tokenizer) - 2 + math.exp(2) + math.exp(1))
    expected = [-log_z, 2 - log_z, 1 - log_z, -log_z]  # log p(letter) = bias - log(sum of exp(bias))
    scored = lib.letter_loglikelihoods(model, tokenizer, items, batch_size=8)
    for sums, counts in scored:
        np.testing.assert_allclose(sums, expected, rtol=1e-5)  # fp32 log-softmax over 49,152 logits: ~2e-5 off
        assert counts.tolist() == [1, 1, 1, 1]
    assert model.calls == [(6, max(len(tokenizer.encode(item["prompt"])) for item in items))]  # one row per item
    assert lib.harness_choice(scored[0][0], 1) == (1, 1.0) and lib.harness_choice(scored[0][0], 0) == (1, 0.0)
    assert lib.harness_choice([-1.0, -1.0, -2.0, -3.0], 1) == (0, 0.0)  # a tie goes to the first, as np.argmax
    info = {**lib.HARNESS_TASKS["MedMCQA"], "source": "file"}
    record, rows = lib.run_mc_task(model, tokenizer, info, items, batch_size=8)
    assert record["fine_tuned_accuracy"] == pytest.approx(2 / 6)  # always " B": right where the answer is B
    assert record["base_accuracy"] == pytest.approx(2 / 6)  # uniform: every letter ties, argmax takes " A"
    assert (rows["base_choice"] == 0).all() and (rows["fine_tuned_choice"] == 1).all()
    assert rows["base_raw_credit"].isna().all() and "base_accuracy_raw" not in record
    assert record["chance"] == 0.25 and record["k"] == 3 and record["split"] == "validation"
    assert json.loads(rows["fine_tuned_scores"][0]) == pytest.approx(expected, abs=1e-4)
    text = lib.knowledge_paragraph(record)
    assert "lm-evaluation-harness's (`medmcqa`, 0-shot, `acc`)" in text


def test_medqa_file_and_bad_rows(lib, tokenizer, tmp_path):
    items = lib.read_harness_file(MEDQA_SAMPLE, "MedQA-4-options")
    assert [item["answer"] for item in items] == [0, 1, 2, 3] and items[1]["options"][1] == "Right coronary artery"
    assert items[0]["prompt"].startswith("Question: A 24-year-old woman") and items[0]["prompt"].endswith("\nAnswer:")
    record, _ = lib.run_mc_task(BiasLM(len(tokenizer)), tokenizer, {**lib.HARNESS_TASKS["MedQA-4-options"]}, items)
    assert record["base_accuracy"] == record["fine_tuned_accuracy"] == 0.25  # uniform: " A", right once in four
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"question": "q", "opa": "a", "opb": "b", "opc": "c", "opd": "d", "cop": 4}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: 'cop' must be the 0-based index"):
        lib.read_harness_file(path, "MedMCQA")
    path.write_text(json.dumps({"sent1": "q", "ending0": "a", "label": 0}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: needs the text fields 'sent1' and 'ending0'"):
        lib.read_harness_file(path, "MedQA-4-options")
    assert lib.load_public_mc(False, 10, task="MedQA-4-options")[1].endswith("(offline run)")


def test_published_numbers_are_cited_and_marked_as_not_ours(lib, tmp_path):
    text = lib.published_paragraph(lib.PUBLISHED_MC)
    assert "not measured by this project" in text and lib.PUBLISHED_SOURCE in text
    assert "MedMCQA 26.6 %" in text and "MedQA-4-options 23.4 %" in text
    assert "openlifescienceai/results" in lib.PUBLISHED_SOURCE and "TinyLlama-1.1B-intermediate-step-1431k-3T" in text
    records = [lib.skipped_record({**lib.HARNESS_TASKS[name], "source": "hub"}, "offline", k=3)
               for name in lib.HARNESS_TASKS]
    assert lib.knowledge_summary(records).endswith(text)
    written = json.loads(lib.write_knowledge(records, [], tmp_path, lib.TIE_RULE)[0].read_text())
    assert written["published"] == lib.PUBLISHED_MC and "lm_eval/tasks/medmcqa" in written["harness_source"]
    assert [t["name"] for t in written["tasks"]] == ["MedMCQA", "MedQA-4-options"]
