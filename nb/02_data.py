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
# # 2. Data pipeline
#
# **What:** load the Medical Meadow flashcards (or a local file via `DATASET`, or — without internet —
# the project's small embedded sample), map the columns to `question`/`answer`, clean, de-duplicate,
# draw a `MAX_EXAMPLES` subset with `SEED`, and split 85/10/5 into train/val/test.
#
# **Why this way:** duplicates are removed on a *normalised* question (case, whitespace and punctuation
# ignored) **before** splitting, so no test question has a twin in the training data — otherwise the
# evaluation would partly measure memorisation. Every cleaning step reports how many rows it dropped.

# %% [markdown]
# Load and map the columns. A file without usable columns stops here with a message that lists the
# columns found and the ones accepted; every reading or mapping decision that changes what a row means
# (another encoding or separator, the question taken from `instruction`, numbers used as text) is
# announced here and counted in `metrics/data_statistics.csv`.

# %% tags=["package"]
# package: data

# %% tags=["imports"]
import pandas as pd
from medllm.persist import announce, mark_section, update_run_config
from medllm.data import (
    NEW_TOKENS_QUANTILE, data_pipeline, data_statistics, encode_for_loss, has_html, length_table,
    load_dataset_frame, map_columns, max_new_tokens_from_data, plot_lengths, text_debris_counts,
    to_prompt_completion,
)

# %%
mark_section(OUT, "2. Data pipeline")
raw_df, DATA_SOURCE, DATA_NAME = load_dataset_frame(S["dataset"], ONLINE)
update_run_config(OUT, dataset=DATA_NAME, dataset_source=DATA_SOURCE)
pairs = map_columns(raw_df)
print(f"{len(raw_df):,} raw rows from {DATA_NAME} ({DATA_SOURCE})")
pairs.head(3)

# %% [markdown]
# Clean, de-duplicate, draw the subset and split. HTML tags and entities are stripped and text debris is
# repaired **before** de-duplication (`<b>gout</b>` and `gout` are the same question). **Rule for long examples:** a pair
# whose chat-templated length (system prompt + question + answer) is longer than one packed row
# (`max_length` tokens) is **dropped**, not truncated — a truncated answer would teach the model to stop
# mid-sentence. This happens after the subset is drawn, so the subset can be a little smaller than
# `MAX_EXAMPLES`. Every count (rows with HTML or text debris repaired, rows dropped by each step) lands in
# `metrics/data_statistics.csv`.

# %% [markdown]
# **The cleaning rule**, the part worth reading: text only, normalised, then exact duplicates and repeated
# questions dropped, each step counted.
#
# <!-- source: medllm.data.clean_pairs -->

# %%
html_rows = int((pairs["question"].map(has_html) | pairs["answer"].map(has_html)).sum())
debris = text_debris_counts(pairs)
splits, dropped, n_clean = data_pipeline(pairs, tokenizer, S)
if dropped["too_long"]:
    announce(f"{dropped['too_long']} examples are longer than one packed row ({S['max_length']} tokens "
             "with the chat template) and were dropped.")
split_summary = pd.DataFrame({"split": list(splits), "examples": [len(f) for f in splits.values()]})
(OUT / "metrics").mkdir(parents=True, exist_ok=True)
split_summary.to_csv(OUT / "metrics" / "split_summary.csv", index=False)
print(f"Rows with HTML tags or entities (stripped): {html_rows}; text debris repaired: {debris}")
print("Rows dropped by each cleaning step:", dropped)
print(f"{n_clean:,} clean pairs → {sum(len(f) for f in splits.values()):,} in the subset")
split_summary

# %% [markdown]
# Statistics and length distributions. Token counts use the model's own tokenizer: they decide the
# packing block size and how long training takes.

# %%
lengths = length_table(splits, tokenizer)
reading_changes = pairs.attrs["changes"]  # announced above: encoding, separator, questions from instruction, numbers
counts = {"rows_with_html_stripped": html_rows, **reading_changes, **debris}
stats = data_statistics(lengths, dropped, len(raw_df), counts)
stats.to_csv(OUT / "metrics" / "data_statistics.csv", index=False)
plot_lengths(lengths, OUT / "visualizations" / "data_lengths.png")
train_answer_tokens = lengths.query("split == 'train' and field == 'answer'")["tokens"]
S["max_new_tokens"] = max_new_tokens_from_data(train_answer_tokens, S["max_new_tokens_cap"])
update_run_config(OUT, max_new_tokens=S["max_new_tokens"], max_new_tokens_rule={
    "quantile": NEW_TOKENS_QUANTILE, "of": "train answer tokens + 1 (end of turn)", "cap": S["max_new_tokens_cap"],
    "uncapped": max_new_tokens_from_data(train_answer_tokens, 10**6)})
print(f"max_new_tokens = {S['max_new_tokens']} (90th percentile of the training answers, capped at "
      f"{S['max_new_tokens_cap']})")
stats[stats["kind"] == "length"]

# %% [markdown]
# **The training record** is TRL's conversational prompt/completion format: the system prompt and the
# question are the prompt, the answer is the completion, and only the completion carries the loss.
#
# <!-- source: medllm.data.build_messages -->
#
# <!-- source: medllm.data.to_prompt_completion -->

# %%
train_records = to_prompt_completion(splits["train"])
example = encode_for_loss(tokenizer, splits["train"]["question"][0], splits["train"]["answer"][0])
print(tokenizer.decode(example["input_ids"]))
print(f"{sum(label != -100 for label in example['labels'])} of {len(example['input_ids'])} tokens carry the loss")
