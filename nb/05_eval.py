# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
# ---

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

# %% [markdown]
# The comparison on the validation split (a few minutes on a CPU: it is timed in the table's `seconds`), then the
# chosen setting, saved with the adapter.

# %% tags=["package"]
# package: evaluate decoding knowledge

# %% tags=["imports"]
import pandas as pd
import time
from IPython.display import Markdown, display
from medllm.persist import announce, mark_section, update_run_config
from medllm.decoding import DECODING_EXAMPLES, DECODING_RULE, decoding_table, decoding_trials, write_decoding
from medllm.evaluate import (
    DEMO_QUESTIONS, answer_with_both, evaluation_results, example_scores, model_perplexities, plot_evaluation,
    plot_rouge_differences, side_by_side, summarize_scores, with_perplexity, wrapped_table, write_evaluation,
)
from medllm.knowledge import (
    HARNESS_TASKS, MC_BENCHMARK_ITEMS, MC_K, MC_MAX_ITEMS, TIE_RULE, discrimination_items, distinct_answer_count,
    knowledge_summary, load_public_mc, plot_knowledge, run_mc_task, skipped_record, write_knowledge,
)

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

# %% [markdown]
# **What counts as a loop** (the same rule for both models and for every decoding setting):
#
# <!-- source: medllm.evaluate.most_repeated_ngram -->
#
# <!-- source: medllm.evaluate.loops -->

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
# ### Plots

# %%
plot_evaluation(scores, OUT / "visualizations" / "evaluation_comparison.png")
plot_rouge_differences(scored, OUT / "visualizations" / "rougeL_differences.png")
print("Saved visualizations/evaluation_comparison.png and visualizations/rougeL_differences.png")

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
