"""Section 5, issue 19: the loop metric, distinct-2, hit-the-limit flags, the decoding grid and the rule that picks
one setting on the validation split."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT


def test_a_loop_is_four_words_three_times(lib):
    assert lib.most_repeated_ngram("Fever (usually mild) " * 3) == 2  # a 3-word phrase 3 times: each 4-gram twice
    assert not lib.loops("Fever (usually mild) " * 3)
    assert lib.most_repeated_ngram("Fever (usually mild) " * 4) == 3 and lib.loops("Fever (usually mild) " * 4)
    assert lib.most_repeated_ngram("a a a a a a") == 3 and lib.loops("a a a a a a")  # overlapping occurrences count
    assert not lib.loops("a a a a a")
    assert lib.most_repeated_ngram("") == 0 and not lib.loops("too short")
    sentence = "Gout is caused by uric acid crystals in a joint, and it is treated with anti-inflammatory drugs."
    assert not lib.loops(sentence) and lib.most_repeated_ngram(sentence) == 1
    assert not lib.loops("The cause is not known. The cause is not known.")  # twice is not a loop
    assert lib.loops("The cause is not known. The cause is not known. The cause is not known.")


def test_words_are_whitespace_separated_and_exact(lib):
    assert not lib.loops("pain in the chest. Pain in the chest. PAIN IN THE CHEST. pain in the chest!")
    assert lib.loops("pain\nin the chest pain in  the chest pain in\tthe chest")


def test_distinct_2(lib):
    assert lib.distinct_n("a b a b") == pytest.approx(2 / 3)  # (a b), (b a), (a b): 2 distinct of 3
    assert lib.distinct_n("metformin lowers blood glucose") == 1.0
    assert np.isnan(lib.distinct_n("one")) and np.isnan(lib.distinct_n(""))
    assert lib.distinct_n("x y " * 10) < 0.2


def test_degeneration_summary(lib):
    answers = ["a b c d a b c d a b c d", "A short answer.", "one"]
    summary = lib.degeneration(answers, [True, False, False])
    assert summary["loop_rate"] == pytest.approx(1 / 3)
    assert summary["hit_max_new_tokens"] == pytest.approx(1 / 3)
    assert summary["distinct_2"] == pytest.approx((lib.distinct_n(answers[0]) + 1.0) / 2)  # NaN (one word) left out
    assert lib.degeneration(answers)["hit_max_new_tokens"] is None


def test_the_reference_run_loops_as_the_issue_counted(lib):
    predictions = pd.read_csv(ROOT / "results" / "reference-cpu-wikidoc" / "metrics" / "predictions.csv")
    tuned = predictions["fine_tuned_answer"].map(lib.loops)
    base = predictions["base_answer"].map(lib.loops)
    if "fine_tuned_loops" in predictions:  # a run of this code: the file's flags are the metric's
        assert (predictions["fine_tuned_loops"] == tuned).all() and (predictions["base_loops"] == base).all()
    else:  # the run issue 19 was filed on: 16 of 40 fine-tuned answers and 6 of 40 base answers loop
        assert (int(tuned.sum()), int(base.sum()), len(predictions)) == (16, 6, 40)


class ScriptedGenerator(torch.nn.Module):
    """A model whose generate() appends fixed new tokens to each row (the end-of-turn id is 2)."""

    def __init__(self, new_tokens):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.new_tokens = torch.tensor(new_tokens)
        self.generation_config = type("Config", (), {"eos_token_id": 2})()
        self.kwargs = None

    def generate(self, input_ids, **kwargs):
        self.kwargs = kwargs
        return torch.cat([input_ids, self.new_tokens[:len(input_ids)]], dim=1)


def test_hit_limit_means_no_end_of_turn_in_the_new_tokens(lib, tokenizer):
    prompts = [tokenizer.encode("What is gout?"), tokenizer.encode("What is anaemia? Tell me more.")]
    a, b = tokenizer.encode("Uric acid"), tokenizer.encode("Low haemoglobin in the blood")
    new_tokens = [a + [2] + [2] * (len(b) - len(a)), b + [tokenizer.encode("and")[0]]]  # ends its turn / runs on
    model = ScriptedGenerator(new_tokens)
    tokenizer.padding_side = "left"
    (first, first_hit), (second, second_hit) = lib.generate_batch(model, tokenizer, prompts, len(new_tokens[0]))
    assert first == "Uric acid" and not first_hit
    assert second.startswith("Low haemoglobin in the blood") and second_hit
    assert model.kwargs["do_sample"] is False  # greedy without a generation config
    config = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=3"], 7)
    lib.generate_batch(model, tokenizer, prompts, 7, config)
    assert model.kwargs["generation_config"] is config and "do_sample" not in model.kwargs


def test_answer_with_both_records_the_limit(lib, peft_model, tokenizer):
    frame = lib.answer_with_both(peft_model, tokenizer, ["How does aspirin work?"], max_new_tokens=3, batch_size=1)
    assert list(frame.columns) == ["question", "base_answer", "fine_tuned_answer", "base_hit_limit",
                                   "fine_tuned_hit_limit"]
    assert frame["base_hit_limit"][0] and frame["fine_tuned_hit_limit"][0]  # nobody explains aspirin in 3 tokens


def test_every_grid_setting_is_a_valid_generation_config(lib, embedded_model):
    model, tokenizer = embedded_model
    assert list(lib.DECODING_GRID) == ["greedy", "repetition_penalty=1.1", "repetition_penalty=1.2",
                                       "no_repeat_ngram_size=3", "no_repeat_ngram_size=4",
                                       "sampling (T=0.7, top_p=0.9, seeded)"]
    for fields in lib.DECODING_GRID.values():
        config = lib.decoding_config(model, tokenizer, fields, 12)
        config.validate(strict=True)  # transformers' own check: no conflicting or ignored flags
        assert config.max_new_tokens == 12 and config.pad_token_id == tokenizer.pad_token_id
        assert config.eos_token_id == model.generation_config.eos_token_id


def test_no_repeat_setting_reaches_generate(lib, embedded_model):
    model, tokenizer = embedded_model
    question = ["List the symptoms of the common cold, one per line, and repeat the list three times."]
    config = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=3"], 48)
    prompt = tokenizer.apply_chat_template(lib.build_messages(question[0]), add_generation_prompt=True,
                                           tokenize=True, return_dict=False)
    tokenizer.padding_side = "left"
    answer, _ = lib.generate_batch(model, tokenizer, [prompt], 48, config)[0]
    ids = list(prompt) + tokenizer.encode(answer)
    trigrams = [tuple(ids[i:i + 3]) for i in range(len(ids) - 2)]
    new = trigrams[len(prompt) - 2:]
    assert len(answer.split()) > 5 and len(set(new)) == len(new)  # no token 3-gram twice, the prompt's included


def test_seeded_sampling_repeats_and_trials_cover_the_grid(lib, peft_model, tokenizer):
    frame = pd.DataFrame({"question": ["What is gout?", "What causes anaemia?"],
                          "answer": ["A form of arthritis caused by uric acid crystals.", "Blood loss or low iron."]})
    trials = lib.decoding_trials(peft_model, tokenizer, frame, max_new_tokens=4, batch_size=2, seed=3)
    assert list(trials) == list(lib.DECODING_GRID)
    again = lib.decoding_trials(peft_model, tokenizer, frame, 4, 2, grid={"s": lib.DECODING_GRID[
        "sampling (T=0.7, top_p=0.9, seeded)"]}, seed=3)
    assert again["s"]["answers"] == trials["sampling (T=0.7, top_p=0.9, seeded)"]["answers"]
    table = lib.decoding_table(trials, n_resamples=50, seed=3)
    assert list(table["setting"]) == list(lib.DECODING_GRID) and table["chosen"].sum() == 1
    assert {"loop_rate", "hit_max_new_tokens", "distinct_2", "mean_words", "seconds", "rougeL_ci95_low",
            "within_noise", "generation_config"} <= set(table.columns)
    assert table["hit_max_new_tokens"].tolist() == [1.0] * 6  # 4 tokens are never enough to finish
    sampled = table.set_index("setting").loc["sampling (T=0.7, top_p=0.9, seeded)"]
    assert sampled["seed"] == 3 and json.loads(sampled["generation_config"])["do_sample"] is True


# The rule on a fixture: ten validation questions, per-question ROUGE-L and loop flags for four settings.
GREEDY = [0.30, 0.25, 0.40, 0.35, 0.20, 0.30, 0.28, 0.33, 0.31, 0.29]
NOISE = [0.05, -0.06, 0.04, -0.05, 0.03, -0.04, 0.02, -0.03, 0.01, -0.02]  # mean -0.005, both signs


def fixture_scores():
    """ROUGE-L and loop flags for: greedy (best ROUGE-L, 4 loops), penalty (within noise, 2 loops), no-repeat (within
    noise, no loop) and bad (no loop, but clearly worse ROUGE-L)."""
    rouge = {"greedy": GREEDY, "penalty": [g + n / 2 for g, n in zip(GREEDY, NOISE)],
             "no_repeat": [g + n for g, n in zip(GREEDY, NOISE)],
             "bad": [g - 0.10 + n / 5 for g, n in zip(GREEDY, NOISE)]}
    looped = {"greedy": [1, 1, 0, 1, 0, 0, 1, 0, 0, 0], "penalty": [1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
              "no_repeat": [0] * 10, "bad": [0] * 10}
    return rouge, looped


def test_rule_picks_the_fewest_loops_within_noise_of_the_best(lib):
    rouge, looped = fixture_scores()
    table = lib.choose_decoding(rouge, looped, n_resamples=1000, seed=0).set_index("setting")
    assert table["rougeL"].idxmax() == "greedy" and table.loc["greedy", "diff_to_best"] == 0
    assert table["within_noise"].to_dict() == {"greedy": True, "penalty": True, "no_repeat": True, "bad": False}
    assert table.loc["bad", "diff_ci95_high"] < 0 < table.loc["no_repeat", "diff_ci95_high"]
    assert table.loc["no_repeat", "diff_to_best"] == pytest.approx(-0.005)
    assert table["loop_rate"].to_dict() == {"greedy": 0.4, "penalty": 0.2, "no_repeat": 0.0, "bad": 0.0}
    assert table["chosen"].tolist() == [False, False, True, False]  # not "bad": no loops, but worse beyond noise
    low, high = table.loc["greedy", ["rougeL_ci95_low", "rougeL_ci95_high"]]
    assert low < np.mean(GREEDY) < high
    gap = lib.paired_bootstrap_ci(GREEDY, rouge["no_repeat"], np.mean, 1000, 0)
    assert (table.loc["no_repeat", "diff_ci95_low"], table.loc["no_repeat", "diff_ci95_high"]) == (gap["low"],
                                                                                                   gap["high"])


def test_rule_ties_go_to_rouge_then_to_grid_order(lib):
    rouge, looped = fixture_scores()
    looped["no_repeat"] = looped["penalty"]  # penalty and no_repeat now loop equally often
    table = lib.choose_decoding(rouge, looped, n_resamples=300, seed=0)
    assert table.loc[table["chosen"], "setting"].item() == "penalty"  # the higher ROUGE-L of the two
    same = {"first": GREEDY, "second": list(GREEDY)}
    table = lib.choose_decoding(same, {"first": [0] * 10, "second": [0] * 10}, n_resamples=100)
    assert table["chosen"].tolist() == [True, False]
    alone = lib.choose_decoding({"greedy": GREEDY}, {"greedy": [1] * 10}, n_resamples=100)
    assert alone["chosen"].tolist() == [True] and alone["within_noise"].tolist() == [True]


def test_decoding_files_and_the_saved_config(lib, embedded_model, tmp_path):
    model, tokenizer = embedded_model
    rouge, looped = fixture_scores()
    table = lib.choose_decoding(rouge, looped, n_resamples=100)
    config = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=4"], 40)
    csv_path, json_path = lib.write_decoding(table, config, tmp_path)
    assert pd.read_csv(csv_path)["chosen"].sum() == 1
    saved = lib.saved_generation_config(tmp_path / "models" / "final_adapter")
    assert saved.no_repeat_ngram_size == 4 and saved.max_new_tokens == 40 and not saved.do_sample
    assert json.loads(json_path.read_text())["no_repeat_ngram_size"] == 4
    assert lib.saved_generation_config(tmp_path / "nowhere") is None
