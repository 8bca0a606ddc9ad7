"""Section 5: metrics on hand-made inputs with known values, the bootstrap, the writer, and generation."""

import json
import math

import numpy as np
import pandas as pd
import pytest

SENTENCE = "metformin is the first line drug for type two diabetes in most adults"
OTHER = "appendicitis presents with periumbilical pain migrating toward right lower quadrant"


def predictions_frame(base, tuned, references):
    """A predictions frame as the notebook builds it, from lists of answers."""
    return pd.DataFrame({"question": [f"q{i}" for i in range(len(references))], "reference": references,
                         "base_answer": base, "fine_tuned_answer": tuned})


def test_identical_strings_score_one(lib):
    assert lib.corpus_bleu([SENTENCE, OTHER], [SENTENCE, OTHER]) == 1.0
    assert lib.sentence_bleus([SENTENCE], [SENTENCE]) == [1.0]
    rouge = lib.rouge_f_scores([SENTENCE], [SENTENCE])
    assert all(rouge[name] == [pytest.approx(1.0)] for name in ("rouge1", "rouge2", "rougeL"))


def test_disjoint_strings_score_zero(lib):
    assert lib.corpus_bleu([SENTENCE], [OTHER]) == 0.0
    assert lib.sentence_bleus([SENTENCE], [OTHER]) == [0.0]
    assert lib.rouge_f_scores([SENTENCE], [OTHER]) == {"rouge1": [0.0], "rouge2": [0.0], "rougeL": [0.0]}
    assert lib.corpus_bleu([""], [OTHER]) == 0.0


def test_rouge_uses_stemming(lib):
    rouge = lib.rouge_f_scores(["treats infections"], ["treating infection"])
    assert rouge["rouge1"] == [pytest.approx(1.0)]


def test_perplexity_from_fixed_loss(lib):
    assert lib.perplexity(20.0, 10) == pytest.approx(math.exp(2.0))


def test_bleu_statistics_reproduce_corpus_bleu(lib):
    predictions = [SENTENCE, "metformin lowers blood glucose", "the pain starts near the navel", ""]
    references = [SENTENCE.replace("most", "many"), "metformin lowers hepatic glucose output", OTHER, OTHER]
    stats = lib.bleu_statistics(predictions, references)
    assert stats.shape == (4, 10)
    assert lib.bleu_from_statistics(stats) == pytest.approx(lib.corpus_bleu(predictions, references))


def test_bootstrap_constant_improvement_excludes_zero(lib):
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.5, size=40)
    ci = lib.paired_bootstrap_ci(base, base + 0.2, np.mean, n_resamples=300, seed=0)
    assert ci["diff"] == pytest.approx(0.2)
    assert 0 < ci["low"] <= 0.2 + 1e-12 and ci["high"] >= 0.2 - 1e-12


def test_bootstrap_noisy_improvement_and_identical(lib):
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, size=200)
    tuned = base + 0.1 + rng.normal(0, 0.05, size=200)
    ci = lib.paired_bootstrap_ci(base, tuned, np.mean, n_resamples=500, seed=0)
    assert 0 < ci["low"] < ci["diff"] < ci["high"]
    identical = lib.paired_bootstrap_ci(base, base, np.mean, n_resamples=50, seed=0)
    assert identical == {"diff": 0.0, "low": 0.0, "high": 0.0}
    again = lib.paired_bootstrap_ci(base, tuned, np.mean, n_resamples=500, seed=0)
    assert again == ci  # seeded: repeatable


def test_win_tie_loss_counts(lib):
    rates = lib.win_tie_loss([0.1, 0.5, 0.5, 0.9], [0.2, 0.5, 0.4, 0.95])
    assert rates == {"win": 0.5, "tie": 0.25, "loss": 0.25}


def test_evaluation_writer_follows_spec(lib, tmp_path):
    references = [SENTENCE, OTHER, "aspirin irreversibly inhibits cyclooxygenase", "penicillin for ten days"]
    frame = predictions_frame(base=["diabetes is a disease", "pain", "aspirin is a drug", "rest"],
                              tuned=[SENTENCE, OTHER.replace("toward", "to the"), "aspirin inhibits cyclooxygenase",
                                     "penicillin"], references=references)
    scored = lib.example_scores(frame)
    summary = lib.summarize_scores(scored, n_resamples=100, seed=0)
    scores = lib.with_perplexity(summary, {"base": 12.5, "fine_tuned": 7.25}, 9)
    assert "perplexity" not in summary["base"]  # with_perplexity does not mutate its input
    json_path, csv_path = lib.write_evaluation(scores, scored, tmp_path)

    written = json.loads(json_path.read_text())
    assert json_path == tmp_path / "metrics" / "evaluation_scores.json"
    assert written["n_examples"] == 4 and written["n_perplexity_examples"] == 9
    for side in ("base", "fine_tuned"):
        assert set(written[side]) >= {"bleu", "rouge1", "rouge2", "rougeL", "perplexity", "mean_words"}
        assert all(0.0 <= written[side][m] <= 1.0 for m in ("bleu", "rouge1", "rouge2", "rougeL"))
    assert written["base"]["perplexity"] == 12.5 and written["fine_tuned"]["perplexity"] == 7.25
    assert written["fine_tuned"]["rougeL"] > written["base"]["rougeL"]
    assert written["fine_tuned"]["bleu"] > written["base"]["bleu"]
    assert written["win_rate"] == {"win": 1.0, "tie": 0.0, "loss": 0.0}
    for metric in ("bleu", "rougeL"):
        ci = written["ci95"][metric]
        assert ci["low"] <= ci["diff"] <= ci["high"]
    assert written["reference_mean_words"] == pytest.approx(np.mean([len(r.split()) for r in references]))

    table = pd.read_csv(csv_path)
    assert list(table.columns[:8]) == ["question", "reference", "base_answer", "fine_tuned_answer", "base_rougeL",
                                       "fine_tuned_rougeL", "base_bleu", "fine_tuned_bleu"]
    assert {"base_words", "fine_tuned_words", "reference_words"} <= set(table.columns)
    assert table["fine_tuned_rougeL"].mean() == pytest.approx(written["fine_tuned"]["rougeL"])
    assert {"base_loops", "fine_tuned_loops", "base_distinct2", "fine_tuned_distinct2"} <= set(table.columns)
    assert not {"base_hit_limit", "fine_tuned_hit_limit"} & set(table.columns)  # not generated here: not known
    assert written["ci95"]["loop_rate"] == {"diff": 0.0, "low": 0.0, "high": 0.0}
    results = lib.evaluation_results(scores)
    assert list(results["metric"]) == ["bleu", "rouge1", "rouge2", "rougeL", "perplexity", "mean_words",
                                       "loop_rate", "distinct_2"]
    rouge = results.set_index("metric").loc["rougeL"]
    assert rouge["difference"] == pytest.approx(written["fine_tuned"]["rougeL"] - written["base"]["rougeL"])
    assert rouge["relative_change"] == pytest.approx(rouge["difference"] / rouge["base"])
    ci = written["ci95"]["rougeL"]
    assert (rouge["ci95_low"], rouge["ci95_high"]) == (ci["low"], ci["high"])
    assert results.set_index("metric").loc[["rouge1", "perplexity"], "ci95_low"].isna().all()


def test_degeneration_is_scored_per_answer_and_per_model(lib):
    looping = "Fever (usually mild) " * 5
    frame = predictions_frame(base=[looping, "pain", "aspirin is a drug", looping],
                              tuned=[SENTENCE, OTHER, looping, "penicillin for ten days"],
                              references=[SENTENCE, OTHER, "aspirin irreversibly inhibits cyclooxygenase",
                                          "penicillin for ten days"])
    frame["base_hit_limit"], frame["fine_tuned_hit_limit"] = [True, False, False, True], [False, False, True, False]
    scored = lib.example_scores(frame)
    assert scored["base_loops"].tolist() == [True, False, False, True]
    assert scored["fine_tuned_loops"].tolist() == [False, False, True, False]
    assert scored["base_hit_limit"].tolist() == [True, False, False, True]
    assert scored["fine_tuned_distinct2"][0] == 1.0 and scored["base_distinct2"][0] < 0.5
    summary = lib.summarize_scores(scored, n_resamples=200, seed=0)
    assert summary["base"]["loop_rate"] == 0.5 and summary["fine_tuned"]["loop_rate"] == 0.25
    assert summary["base"]["hit_max_new_tokens"] == 0.5 and summary["fine_tuned"]["hit_max_new_tokens"] == 0.25
    ci = summary["ci95"]["loop_rate"]
    assert ci["diff"] == pytest.approx(-0.25) and ci["low"] <= -0.25 <= ci["high"]
    scores = lib.with_perplexity(summary, {"base": 9.0, "fine_tuned": 8.0}, 4)
    table = lib.evaluation_results(scores).set_index("metric")
    assert list(table.index[-3:]) == ["loop_rate", "distinct_2", "hit_max_new_tokens"]
    assert table.loc["loop_rate", "difference"] == pytest.approx(-0.25)
    assert table.loc["loop_rate", "ci95_low"] == ci["low"] and np.isnan(table.loc["distinct_2", "ci95_low"])


def test_plots_are_written(lib, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    frame = predictions_frame(["pain", "aspirin is a drug"], [OTHER, "aspirin inhibits cyclooxygenase"],
                              [OTHER, "aspirin irreversibly inhibits cyclooxygenase"])
    scored = lib.example_scores(frame)
    scores = lib.with_perplexity(lib.summarize_scores(scored, n_resamples=20), {"base": 3.0, "fine_tuned": 2.0}, 2)
    lib.plot_evaluation(scores, tmp_path / "visualizations" / "evaluation_comparison.png")
    lib.plot_rouge_differences(scored, tmp_path / "visualizations" / "rougeL_differences.png")
    assert (tmp_path / "visualizations" / "evaluation_comparison.png").stat().st_size > 0
    assert (tmp_path / "visualizations" / "rougeL_differences.png").stat().st_size > 0


def test_generate_answers_in_input_order(lib, peft_model, tokenizer):
    questions = ["What is hypertension?", "Which bacterium most often causes strep throat in children and adults?"]
    tokenizer.padding_side = "right"
    answers = lib.generate_answers(peft_model, tokenizer, questions, max_new_tokens=4, batch_size=2)
    assert tokenizer.padding_side == "right"
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # The short question is padded in the batch and processed second (longest first): unpadded alone, it must
    # give the same greedy answer, in the first position.
    alone = lib.generate_answers(peft_model, tokenizer, questions[:1], max_new_tokens=4, batch_size=1)
    assert answers[0] == alone[0] and answers[0] != ""


def test_zero_init_adapter_matches_base(lib, peft_model, tokenizer):
    frame = lib.answer_with_both(peft_model, tokenizer, ["How does aspirin work?"], max_new_tokens=4, batch_size=1)
    assert list(frame.columns) == ["question", "base_answer", "fine_tuned_answer", "base_hit_limit",
                                   "fine_tuned_hit_limit"]
    assert frame["base_answer"][0] == frame["fine_tuned_answer"][0]
    ppl = lib.model_perplexities(peft_model, tokenizer, pd.DataFrame({"question": ["What is hypertension?"],
                                                                      "answer": ["High blood pressure."]}), 1)
    assert ppl["base"] == pytest.approx(ppl["fine_tuned"]) and ppl["base"] > 1.0
