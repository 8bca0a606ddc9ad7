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

# %% tags=["lib"]
import html
import re
import string

ACCEPTED_SCHEMAS = (("instruction", "input", "output"), ("question", "answer"))
SPLIT_FRACTIONS = {"train": 0.85, "val": 0.10, "test": 0.05}


def embedded_data_path():
    """Path of the project's embedded demo sample (next to the notebook, or in the package data)."""
    for base in (Path.cwd(), Path.cwd().parent, Path(os.environ.get("MEDLLM_HOME", "."))):
        if (base / "data" / EMBEDDED_DATA).exists():
            return base / "data" / EMBEDDED_DATA
    raise FileNotFoundError(f"the embedded sample data/{EMBEDDED_DATA} is not next to the notebook (uploading only "
                            "the .ipynb leaves it behind); set DATASET to a local .json/.jsonl/.csv file.")


# %% [markdown]
# Reading a file. Bad files stop with a message that says what is wrong and what to do: a malformed
# JSON line is named by its line number, a JSON object that is not a list of rows is refused with the
# shape expected, and a CSV that is not UTF-8 is read as cp1252 (or latin-1) with an announcement.

# %% tags=["lib"]
def read_table(path):
    """Read a .json (list of rows, or lines), .jsonl or .csv file into a DataFrame; refuse bad files with a message."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"DATASET file not found: {path} — give a path to a .json, .jsonl or .csv file.")
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".jsonl", ".json"}:
        raise ValueError(f"Unsupported DATASET file type {suffix!r} ({path}): use .json, .jsonl or .csv.")
    if path.stat().st_size == 0:
        raise ValueError(f"DATASET file {path} is empty: it needs rows with question/answer columns.")
    if suffix == ".csv":
        return read_csv_text(path)
    text = read_text_utf8(path)
    if suffix == ".json":
        try:
            return rows_frame(json.loads(text), path)
        except json.JSONDecodeError:
            pass  # not one JSON document: maybe JSON lines with a .json name
    return read_json_lines(text, path)


def read_text_utf8(path):
    """The text of a JSON file, refusing a file that is not UTF-8 (JSON must be UTF-8)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 (byte {error.object[error.start]:#04x} at position {error.start}); "
                         "JSON files must be UTF-8: re-save it as UTF-8.") from None


def read_csv_text(path):
    """Read a CSV as text columns: UTF-8, or an announced cp1252/latin-1 fallback; malformed rows get a message."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            frame = pd.read_csv(path, dtype=object, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError as error:
            if encoding == "utf-8-sig":
                bad = f"byte {error.object[error.start]:#04x} at position {error.start}"
            continue
        except pd.errors.ParserError as error:
            detail = str(error).strip()
            raise ValueError(f"{path} is not a well-formed CSV ({detail}). Check that text containing commas or "
                             "line breaks is quoted, and that every row has the same number of columns.") from None
        if encoding != "utf-8-sig":
            announce(f"{path.name} is not UTF-8 ({bad}): read it as {encoding} instead. Check that accented "
                     "characters look right, or re-save the file as UTF-8.")
        frame.attrs["encoding"] = encoding
        return frame
    raise ValueError(f"{path} could not be decoded as UTF-8, cp1252 or latin-1.")  # latin-1 never fails


def read_json_lines(text, path):
    """Parse JSON lines (one object per line), naming the first malformed line by its number."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"Line {number} of {path} is not valid JSON ({error.msg} at column {error.colno}): "
                             f"{line[:80]!r}. Fix or delete that line; each line must be one JSON object.") from None
    return rows_frame(rows, path)


def rows_frame(rows, path):
    """A DataFrame from a list of JSON objects; anything else is refused with the shape expected."""
    expected = 'a list of rows, e.g. [{"question": "...", "answer": "..."}, ...] (or one such object per line)'
    if isinstance(rows, dict):
        keys = ", ".join(map(repr, list(rows)[:8]))
        raise ValueError(f"{path} holds one JSON object (keys {keys}), not a list of rows: expected {expected}. "
                         "If the rows sit under one of these keys, save that list on its own.")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path} holds {type(rows).__name__ if rows else 'no rows'}: expected {expected}.")
    bad = next((index for index, row in enumerate(rows) if not isinstance(row, dict)), None)
    if bad is not None:
        kind = type(rows[bad]).__name__
        raise ValueError(f"Row {bad + 1} of {path} is a {kind}, not an object: expected {expected}.")
    return pd.DataFrame(rows, dtype=object)


# %% [markdown]
# Where the rows come from (a local file, the hub, or the embedded sample — each fallback says why) and
# how their columns map to `question`/`answer`.

# %% tags=["lib"]
def map_columns(df):
    """Map a Medical Meadow (instruction/input/output) or question/answer table to question/answer."""
    columns = set(df.columns)
    if {"input", "output"} <= columns:
        return pd.DataFrame({"question": df["input"], "answer": df["output"]})
    if {"question", "answer"} <= columns:
        return pd.DataFrame({"question": df["question"], "answer": df["answer"]})
    accepted = " or ".join("/".join(schema) for schema in ACCEPTED_SCHEMAS)
    raise ValueError(f"The dataset has no usable columns: found {sorted(map(str, columns))}; expected {accepted}.")


def load_dataset_frame(dataset, online):
    """Return (raw frame, source, name) from a local file, the hub, or the embedded sample."""
    if dataset is not None:
        return read_table(dataset), "local", str(dataset)
    reason = "the Hugging Face hub is unreachable"
    if online:
        try:
            from datasets import load_dataset
            return load_dataset(HUB_DATASET, split="train").to_pandas(), "hub", HUB_DATASET
        except Exception as error:  # noqa: BLE001 - any hub failure falls back to the embedded sample
            reason = f"loading it from the hub failed with {type(error).__name__}: {error}"
            announce(f"Could not load {HUB_DATASET}: {reason}.")
    try:
        path = embedded_data_path()
    except FileNotFoundError as missing:
        raise RuntimeError(f"No training data: {HUB_DATASET} could not be used ({reason}), and {missing} "
                           "Retry when the hub is reachable, or set DATASET to a local file.") from None
    announce(f"Using the embedded demo sample {path.name} ({HUB_DATASET} could not be used: {reason}). "
             "It is a small project-written sample for trying the pipeline, not medical advice.")
    return read_table(path), "embedded", str(path)


# %% [markdown]
# Load and map the columns. A file without usable columns stops here with a message that lists the
# columns found and the ones accepted.

# %%
mark_section(OUT, "2. Data pipeline")
raw_df, DATA_SOURCE, DATA_NAME = load_dataset_frame(S["dataset"], ONLINE)
update_run_config(OUT, dataset=DATA_NAME, dataset_source=DATA_SOURCE)
pairs = map_columns(raw_df)
print(f"{len(raw_df):,} raw rows from {DATA_NAME} ({DATA_SOURCE})")
pairs.head(3)

# %% [markdown]
# Cleaning, subset and split: HTML stripped, whitespace normalised, duplicates removed on a normalised
# question, pairs longer than one packed row dropped, then an 85/10/5 split.

# %% tags=["lib"]
INLINE_TAG = re.compile(r"</?(b|i|u|em|strong|span|a|sup|sub|font|code|small|mark)\b[^<>]*>", re.IGNORECASE)
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


def strip_html(value):
    """Remove HTML tags (inline ones without a trace, others as a space) and decode entities (&amp; → &)."""
    return html.unescape(HTML_TAG.sub(" ", INLINE_TAG.sub("", value)))


def has_html(value):
    """True when a text holds an HTML tag or entity that strip_html would change."""
    return isinstance(value, str) and strip_html(value) != value


def normalize_text(value):
    """Strip HTML tags and entities, collapse runs of whitespace and strip the ends."""
    return re.sub(r"\s+", " ", strip_html(value)).strip()


def question_key(question):
    """Normalised form of a question for near-duplicate detection (case, spaces, punctuation ignored)."""
    return re.sub(r"\s+", " ", question.lower().translate(str.maketrans("", "", string.punctuation))).strip()


def clean_pairs(df):
    """Drop non-text, empty, exact-duplicate and same-question rows (after stripping HTML); return (frame, drops)."""
    dropped = {}
    is_text = df["question"].map(lambda v: isinstance(v, str)) & df["answer"].map(lambda v: isinstance(v, str))
    dropped["non_text"] = int((~is_text).sum())
    df = df[is_text].copy()
    df["question"] = df["question"].map(normalize_text)
    df["answer"] = df["answer"].map(normalize_text)
    empty = (df["question"] == "") | (df["answer"] == "")
    dropped["empty"] = int(empty.sum())
    df = df[~empty]
    exact = df.duplicated(["question", "answer"])
    dropped["exact_duplicates"] = int(exact.sum())
    df = df[~exact]
    near = df["question"].map(question_key).duplicated()
    dropped["near_duplicate_questions"] = int(near.sum())
    df = df[~near]
    return df.reset_index(drop=True), dropped


def draw_subset(df, max_examples, seed):
    """Draw at most max_examples rows at random with a fixed seed."""
    if len(df) <= max_examples:
        return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df.sample(n=max_examples, random_state=seed).reset_index(drop=True)


def split_frame(df, seed, fractions=None):
    """Shuffle and split into train/val/test by fractions (85/10/5 by default), each non-empty."""
    fractions = fractions or SPLIT_FRACTIONS
    if len(df) < 3:
        raise ValueError(f"Need at least 3 clean examples to split into train/val/test; got {len(df)}.")
    shuffled = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    n_test = max(1, round(len(df) * fractions["test"]))
    n_val = max(1, round(len(df) * fractions["val"]))
    return {"train": shuffled.iloc[n_test + n_val:].reset_index(drop=True),
            "val": shuffled.iloc[n_test:n_test + n_val].reset_index(drop=True),
            "test": shuffled.iloc[:n_test].reset_index(drop=True)}


# %% [markdown]
# Pairs longer than one packed row are dropped (the rule above), and `data_pipeline` runs every step
# in order — the terminal training script (`tools/medllm_train.py`) calls the same function.

# %% tags=["lib"]
def templated_lengths(frame, tokenizer):
    """Tokens of each pair rendered as one training conversation (system prompt, question, answer)."""
    conversations = [[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q},
                      {"role": "assistant", "content": a}] for q, a in zip(frame["question"], frame["answer"])]
    if not conversations:
        return []
    texts = tokenizer.apply_chat_template(conversations, tokenize=False)
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def drop_too_long(frame, tokenizer, max_length):
    """Drop pairs whose chat-templated length exceeds max_length (one packed row); return (kept frame, count)."""
    too_long = pd.Series(templated_lengths(frame, tokenizer), index=frame.index, dtype="int64") > max_length
    return frame[~too_long].reset_index(drop=True), int(too_long.sum())


def data_pipeline(pairs, tokenizer, settings):
    """Clean, draw the subset, drop pairs longer than a packed row, split: (splits, dropped counts, clean rows)."""
    clean, dropped = clean_pairs(pairs)
    subset = draw_subset(clean, settings["max_examples"], settings["seed"])
    subset, dropped["too_long"] = drop_too_long(subset, tokenizer, settings["max_length"])
    return split_frame(subset, settings["seed"]), dropped, len(clean)

# %% [markdown]
# Clean, de-duplicate, draw the subset and split. HTML tags and entities are stripped **before**
# de-duplication (`<b>gout</b>` and `gout` are the same question). **Rule for long examples:** a pair
# whose chat-templated length (system prompt + question + answer) is longer than one packed row
# (`max_length` tokens) is **dropped**, not truncated — a truncated answer would teach the model to stop
# mid-sentence. This happens after the subset is drawn, so the subset can be a little smaller than
# `MAX_EXAMPLES`. Every count (rows with HTML, rows dropped by each step) lands in
# `metrics/data_statistics.csv`.

# %%
html_rows = int((pairs["question"].map(has_html) | pairs["answer"].map(has_html)).sum())
splits, dropped, n_clean = data_pipeline(pairs, tokenizer, S)
if dropped["too_long"]:
    announce(f"{dropped['too_long']} examples are longer than one packed row ({S['max_length']} tokens "
             "with the chat template) and were dropped.")
split_summary = pd.DataFrame({"split": list(splits), "examples": [len(f) for f in splits.values()]})
(OUT / "metrics").mkdir(parents=True, exist_ok=True)
split_summary.to_csv(OUT / "metrics" / "split_summary.csv", index=False)
print(f"Rows with HTML tags or entities (stripped): {html_rows}")
print("Rows dropped by each cleaning step:", dropped)
print(f"{n_clean:,} clean pairs → {sum(len(f) for f in splits.values()):,} in the subset")
split_summary

# %% [markdown]
# Token lengths and the statistics table.

# %% tags=["lib"]
def length_table(splits, tokenizer):
    """Per-split character and token lengths of questions and answers, one row per example."""
    rows = []
    for split, frame in splits.items():
        for field in ("question", "answer"):
            tokens = tokenizer(list(frame[field]), add_special_tokens=False)["input_ids"]
            rows += [{"split": split, "field": field, "characters": len(text), "tokens": len(ids)}
                     for text, ids in zip(frame[field], tokens)]
    return pd.DataFrame(rows)


def data_statistics(lengths, dropped, n_raw, counts=None):
    """Summary table: length statistics per split/field, rows dropped by each cleaning step, and other counts."""
    stats = (lengths.groupby(["split", "field"])[["characters", "tokens"]]
             .agg(["count", "mean", "median", "min", "max"]).round(1))
    stats.columns = [f"{measure}_{stat}" for measure, stat in stats.columns]
    stats = stats.reset_index()
    stats.insert(0, "kind", "length")
    counts = {"raw_rows": n_raw, **(counts or {}), **{f"dropped_{step}": count for step, count in dropped.items()}}
    cleaning = pd.DataFrame([{"kind": "cleaning", "split": "all", "field": step, "characters_count": count}
                             for step, count in counts.items()])
    return pd.concat([stats, cleaning], ignore_index=True)


def plot_lengths(lengths, path):
    """Histograms of question and answer lengths in characters and tokens; saved to path."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 6.5))
    for row, measure in enumerate(("characters", "tokens")):
        for col, field in enumerate(("question", "answer")):
            ax = axes[row, col]
            subset = lengths[lengths["field"] == field]
            ax.hist(subset[measure], bins=40, color="tab:blue" if field == "question" else "tab:green", alpha=0.8)
            ax.axvline(subset[measure].median(), color="black", linestyle="--", linewidth=1,
                       label=f"median {subset[measure].median():.0f}")
            ax.set_title(f"{field.capitalize()} length ({measure})")
            ax.set_xlabel(measure)
            ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig

# %% [markdown]
# Statistics and length distributions. Token counts use the model's own tokenizer: they decide the
# packing block size and how long training takes.

# %%
lengths = length_table(splits, tokenizer)
stats = data_statistics(lengths, dropped, len(raw_df), {"rows_with_html_stripped": html_rows})
stats.to_csv(OUT / "metrics" / "data_statistics.csv", index=False)
plot_lengths(lengths, OUT / "visualizations" / "data_lengths.png")
stats[stats["kind"] == "length"]

# %% [markdown]
# ### The training format
#
# Each pair becomes a *conversational prompt/completion* record: the prompt is the system prompt plus the
# question, the completion is the assistant's answer. TRL renders both with the model's **own chat
# template** — the same rendering the evaluation and the chat UI use — and computes the loss on the
# completion tokens only, so the model learns to answer, not to repeat questions.

# %% tags=["lib"]
def build_messages(question, history=None):
    """Chat messages for a question: the system prompt, earlier turns, then the user's question."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, *(history or []), {"role": "user", "content": question}]


def to_prompt_completion(frame):
    """Conversational prompt/completion records (TRL's format) from a question/answer frame."""
    return [{"prompt": build_messages(q), "completion": [{"role": "assistant", "content": a}]}
            for q, a in zip(frame["question"], frame["answer"])]


def encode_for_loss(tokenizer, question, answer):
    """Token ids of prompt + answer, and labels that are -100 on the prompt (answer-only loss), as TRL builds them."""
    prompt = build_messages(question)
    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    full_ids = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": answer}],
                                             tokenize=True, return_dict=False)
    if list(full_ids[:len(prompt_ids)]) != list(prompt_ids):
        raise ValueError("The chat template renders the prompt differently inside the full conversation.")
    labels = [-100] * len(prompt_ids) + list(full_ids[len(prompt_ids):])
    return {"input_ids": list(full_ids), "labels": labels}


# %%
train_records = to_prompt_completion(splits["train"])
example = encode_for_loss(tokenizer, splits["train"]["question"][0], splits["train"]["answer"][0])
print(tokenizer.decode(example["input_ids"]))
print(f"{sum(label != -100 for label in example['labels'])} of {len(example['input_ids'])} tokens carry the loss")
