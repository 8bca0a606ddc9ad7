"""Reading, mapping, cleaning, de-duplicating and splitting the question/answer data; its statistics."""

import codecs
import csv
import gzip
import html
import io
import json
import math
import os
import re
import string
import urllib.parse
from pathlib import Path

import ftfy
import numpy as np
import pandas as pd

from .persist import announce
from .settings import EMBEDDED_DATA, HUB_DATASET, SYSTEM_PROMPT

SPLIT_FRACTIONS = {"train": 0.85, "val": 0.10, "test": 0.05}


def embedded_data_path():
    """Path of the project's embedded demo sample (next to the notebook, or in the package data)."""
    for base in (Path.cwd(), Path.cwd().parent, Path(os.environ.get("MEDLLM_HOME", "."))):
        if (base / "data" / EMBEDDED_DATA).exists():
            return base / "data" / EMBEDDED_DATA
    raise FileNotFoundError(f"the embedded sample data/{EMBEDDED_DATA} is not next to the notebook (uploading only "
                            "the .ipynb leaves it behind); set DATASET to a local .json/.jsonl/.csv file.")


# Reading a file. The format is taken from the file's first bytes, not only its name: a Parquet file named
# `.csv` is read as Parquet (and said so), a gzip file is unpacked, and other binary formats (Excel, SQLite,
# PDF, zip) are refused by name. Text may be UTF-8, UTF-16 with a byte-order mark (Excel's *Unicode Text*)
# or — with an announcement — cp1252. CSV files may be separated by commas, semicolons, tabs or bars (the
# separator is sniffed with Python's `csv.Sniffer`, then pandas reads the file). JSON may be a list of rows,
# one row per line, or column-oriented (`{"question": [...], "answer": [...]}`). Every such reading decision
# is announced and counted (`frame.attrs["changes"]`, then `metrics/data_statistics.csv`).
TABLE_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".jsonl", ".parquet", ".pq"}
BINARY_FORMATS = ((b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one)"),
                  (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"), (b"SQLite format 3", "an SQLite database"),
                  (b"%PDF", "a PDF document"), (b"ARROW1", "an Arrow/Feather file"), (b"\x7fELF", "a program"))
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}


def read_table(path):
    """Read a .csv/.tsv/.json/.jsonl/.parquet file (format sniffed from its bytes) into a DataFrame."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"DATASET file not found: {path} — give a path to a .json, .jsonl, .csv or .parquet "
                                "file.")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"Unsupported DATASET file type {suffix!r} ({path}): use .json, .jsonl, .csv or .parquet.")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"DATASET file {path} is empty: it needs rows with question/answer columns.")
    changes = {}
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
        changes["read_gzip_unpacked"] = 1
        announce(f"{path.name} is gzip-compressed: unpacked it before reading.")
    frame = read_bytes_as_table(data, path, suffix, changes)
    frame.attrs["changes"] = {name: (len(frame) if count == 1 else count) for name, count in changes.items()}
    return frame


def read_bytes_as_table(data, path, suffix, changes):
    """Read a file's bytes as Parquet, JSON or delimited text, by content first and by name second."""
    if data[:4] == b"PAR1":
        if suffix not in (".parquet", ".pq"):
            changes["read_parquet_by_content"] = 1
            announce(f"{path.name} is a Parquet file (it starts with PAR1), not {suffix}: reading it as Parquet.")
        return pd.read_parquet(io.BytesIO(data))
    kind = next((name for magic, name in BINARY_FORMATS if data.startswith(magic)), None)
    if kind is not None or (b"\x00" in data[:4096] and not looks_utf16(data)):
        kind = kind or "a binary file"
        raise ValueError(f"{path} is {kind}, not a {suffix} table: save the data as CSV (UTF-8) or Parquet, with "
                         "question/answer or instruction/input/output columns.")
    text = decode_text(data, path, suffix, changes)
    if suffix == ".jsonl":
        return read_json_lines(text, path)
    if suffix == ".json":
        return read_json_text(text, path, changes)
    return read_csv_text(text, path, suffix, changes)


# Text: decoding (UTF-8, UTF-16 by its byte-order mark or its zero bytes, else an announced cp1252/latin-1),
# delimited text with its separator sniffed, and JSON as rows, lines or columns.
def looks_utf16(data):
    """True when bytes without a byte-order mark look like mostly-Latin UTF-16 text: every other byte zero."""
    sample = data[:4096 - 4096 % 2]
    for zeros, text in ((sample[1::2], sample[0::2]), (sample[0::2], sample[1::2])):
        printable = sum(32 <= b < 127 or b in (9, 10, 13) or b >= 0xA0 for b in text)
        if len(text) >= 2 and zeros.count(0) > 0.9 * len(zeros) and printable > 0.9 * len(text):
            return True
    return False


def decode_text(data, path, suffix, changes):
    """The text of a file: by its byte-order mark, as UTF-8, as UTF-16 without a mark, or as cp1252/latin-1."""
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    if encoding is None and looks_utf16(data):
        encoding = "utf-16-le" if data[1:4096:2].count(0) > data[0:4096:2].count(0) else "utf-16-be"
    if encoding is not None:
        if encoding.startswith(("utf-16", "utf-32")):
            label = encoding[:6].replace("-", "").upper()  # UTF16 / UTF32
            changes[f"read_{label.lower()}"] = 1
            announce(f"{path.name} is {label[:3]}-{label[3:]} text (as Excel's \"Unicode Text\" saves it): decoded it.")
        return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = f"byte {error.object[error.start]:#04x} at position {error.start}"
        if suffix in (".json", ".jsonl"):
            raise ValueError(f"{path} is not UTF-8 ({bad}); JSON files must be UTF-8: re-save it as UTF-8.") from None
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        changes[f"read_as_{encoding.replace('-', '')}"] = 1
        announce(f"{path.name} is not UTF-8 ({bad}): read it as {encoding} instead. Check that accented characters "
                 "look right, or re-save the file as UTF-8.")
        return text
    raise ValueError(f"{path} could not be decoded as UTF-8, cp1252 or latin-1.")  # latin-1 never fails


# Delimited text and JSON.
def read_csv_text(text, path, suffix, changes):
    """Read delimited text with pandas, its separator sniffed (comma, semicolon, tab or bar) and announced."""
    sample = "\n".join(text.lstrip("\ufeff").splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        delimiter = "\t" if suffix == ".tsv" else ","
        if suffix == ".txt":
            raise ValueError(f"{path} (.txt) does not look like a table with a header row: give a .csv, .tsv, .json, "
                             ".jsonl or .parquet file with question/answer columns.") from None
    if delimiter != ",":
        changes[f"read_{DELIMITERS[delimiter]}_separated"] = 1
        announce(f"{path.name} is {DELIMITERS[delimiter]}-separated: read it so.")
    try:
        frame = pd.read_csv(io.StringIO(text.lstrip("\ufeff")), sep=delimiter, dtype=object, keep_default_na=False)
    except pd.errors.ParserError as error:
        detail = str(error).strip()
        raise ValueError(f"{path} is not a well-formed CSV ({detail}). Check that text containing commas or "
                         "line breaks is quoted, and that every row has the same number of columns.") from None
    frame.attrs["encoding"] = next((name[8:] for name in changes if name.startswith("read_as_")), "utf-8")
    return frame


def read_json_text(text, path, changes):
    """Parse JSON text: one document (rows or columns), or JSON lines when it is not one document."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return read_json_lines(text, path)
    if isinstance(document, dict) and is_column_oriented(document):
        changes["read_json_columns"] = 1
        announce(f"{path.name} holds columns ({', '.join(map(str, list(document)[:6]))}), not a list of rows: "
                 "read each column's values in order as the rows.")
        if set(document) >= {"columns", "data"}:
            return pd.DataFrame(document["data"], columns=document["columns"], dtype=object)
        return pd.DataFrame(document, dtype=object)
    return rows_frame(document, path)


def is_column_oriented(document):
    """True for {"col": [v, ...]} (equal lengths), {"col": {"0": v, ...}} or {"columns": [...], "data": [...]}."""
    if set(document) >= {"columns", "data"} and isinstance(document["data"], list):
        return True
    values = list(document.values())
    if not values:
        return False
    if all(isinstance(v, list) for v in values):
        return len({len(v) for v in values}) == 1 and len(values[0]) > 0
    return all(isinstance(v, dict) for v in values) and len({tuple(v) for v in values}) == 1


# JSON lines and lists of rows; a malformed line is named by its number.
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


# Where the rows come from (a local file, the hub, or the embedded sample — each fallback says why) and
# how their columns map to `question`/`answer`.
QUESTION_ALIASES = ("question", "questions", "prompt", "query", "input", "instruction", "q", "user", "human")
ANSWER_ALIASES = ("answer", "answers", "response", "output", "completion", "reply", "a", "target", "assistant", "gpt")


def column_key(name):
    """A column name as matched: lower case, spaces and hyphens as underscores (`Question ` → `question`)."""
    return re.sub(r"[\s-]+", "_", str(name).strip().lower())


def as_text(series, counts, name):
    """A column with numbers written as text (7.4 → "7.4", 206 → "206"); how many were converted goes to counts."""
    numeric = series.map(lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                         and not pd.isna(v))
    if numeric.any():
        counts[f"{name}s_numbers_as_text"] = int(numeric.sum())
        series = series.where(~numeric, series[numeric].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)))
    return series


def alpaca_questions(df, columns, counts):
    """Questions of an instruction/input/output table: the input (Medical Meadow), or the instruction (Alpaca)."""
    instruction = df[columns["instruction"]]
    given = df[columns["input"]].map(lambda v: isinstance(v, (str, int, float)) and str(v).strip() not in ("", "nan"))
    shared = instruction.astype(str).value_counts(normalize=True).iloc[0] >= 0.9 if len(df) else True
    question = df[columns["input"]].where(given, instruction)
    if not shared:  # varied instructions (classic Alpaca): the instruction is part of the question
        question = question.where(~given, instruction.astype(str) + "\n\n" + df[columns["input"]].astype(str))
        counts["questions_instruction_plus_input"] = int(given.sum())
    counts["questions_from_instruction"] = int((~given).sum())
    return question


# The mapping: which columns are the question and the answer, and what was changed on the way.
def map_columns(df):
    """Map an instruction/input/output or question/answer table (any case, common aliases) to question/answer."""
    columns = {}
    for name in df.columns:
        columns.setdefault(column_key(name), name)
    changes, counts = dict(df.attrs.get("changes", {})), {}
    if {"input", "output"} <= set(columns) and "instruction" in columns:
        question, answer = alpaca_questions(df, columns, counts), df[columns["output"]]
        chosen = (columns["instruction"], columns["input"], columns["output"])
    else:
        found_q = next((alias for alias in QUESTION_ALIASES if alias in columns), None)
        found_a = next((alias for alias in ANSWER_ALIASES if alias in columns), None)
        if found_q is None or found_a is None:
            accepted = "instruction/input/output or question/answer (also prompt/response, input/output, any case)"
            raise ValueError(f"The dataset has no usable columns: found {sorted(map(str, df.columns))}; "
                             f"expected {accepted}.")
        question, answer, chosen = df[columns[found_q]], df[columns[found_a]], (columns[found_q], columns[found_a])
    if tuple(map(str, chosen)) not in (("instruction", "input", "output"), ("question", "answer")):
        announce(f"Using the columns {' / '.join(map(str, chosen))} as the question and the answer.")
    pairs = pd.DataFrame({"question": as_text(question, counts, "question"),
                          "answer": as_text(answer, counts, "answer")})
    for name, count in counts.items():
        if count and name.startswith("questions_"):
            announce(f"{count:,} rows: the question is " + ("the instruction (the input is empty)."
                                                            if name == "questions_from_instruction" else
                                                            "the instruction followed by the input."))
        elif count:
            announce(f"{count:,} {name.split('_')[0]} were numbers, not text: they are used as text.")
    pairs.attrs["changes"] = {**changes, **{name: count for name, count in counts.items() if count}}
    return pairs


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


# Cleaning, subset and split: HTML stripped, text debris repaired, whitespace normalised, duplicates removed on
# a normalised question, pairs longer than one packed row dropped, then an 85/10/5 split.
#
# **Text debris.** Scraped data carry URL escapes and broken encodings: WikiDoc has questions about
# "Parkinson%27s disease" and "M%C3%A9ni%C3%A8re%27s disease", and answers with "Â½ inch" (UTF-8 read as
# latin-1). Runs of percent-escapes are decoded with `urllib.parse.unquote` only where they form valid UTF-8
# text, so a real percentage ("50% of patients") is never touched; mojibake, full-width punctuation and curly
# quotes are repaired by [`ftfy`](https://ftfy.readthedocs.io), a library made for exactly this. Both run
# **before** de-duplication, so "Parkinson%27s" and "Parkinson's" become one question.
INLINE_TAG = re.compile(r"</?(b|i|u|em|strong|span|a|sup|sub|font|code|small|mark)\b[^<>]*>", re.IGNORECASE)
HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")


def strip_html(value):
    """Remove HTML tags (inline ones without a trace, others as a space) and decode entities (&amp; → &)."""
    return html.unescape(HTML_TAG.sub(" ", INLINE_TAG.sub("", value)))


def has_html(value):
    """True when a text holds an HTML tag or entity that strip_html would change."""
    return isinstance(value, str) and strip_html(value) != value


PERCENT_ESCAPES = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
MOJIBAKE_STEPS = {"encode", "decode", "transcode", "decode_inconsistent_utf8"}  # ftfy's steps that undo a wrong
# encoding (its explanation names them as (kind, name) pairs; the other steps fix quotes, widths and the like)


def decode_percent_escapes(value):
    """Decode runs of URL percent-escapes that spell valid UTF-8 text (Parkinson%27s → Parkinson's); keep the rest."""
    def decode(match):
        """One run of escapes, decoded, or left as it was when it is not valid, printable UTF-8."""
        try:
            text = urllib.parse.unquote(match.group(0), errors="strict")
        except UnicodeDecodeError:
            return match.group(0)
        return text if all(c.isprintable() or c.isspace() for c in text) else match.group(0)

    return PERCENT_ESCAPES.sub(decode, value)


def debris_steps(value):
    """Which repairs change a text: 'html', 'percent_escapes', 'mojibake', 'characters' (ftfy's other fixes)."""
    if not isinstance(value, str):
        return set()
    stripped = strip_html(value)
    decoded = decode_percent_escapes(stripped)
    fixed, explanation = ftfy.fix_and_explain(decoded)
    steps = [set(step) & MOJIBAKE_STEPS for step in explanation or []] if fixed != decoded else []
    return ({"html"} if stripped != value else set()) | ({"percent_escapes"} if decoded != stripped else set()) | (
        {"mojibake"} if any(steps) else set()) | ({"characters"} if not all(steps) else set())


def text_debris_counts(frame):
    """Rows whose question or answer had percent-escapes decoded, mojibake fixed or characters normalised."""
    steps = [debris_steps(q) | debris_steps(a) for q, a in zip(frame["question"], frame["answer"])]
    names = {"percent_escapes": "rows_with_percent_escapes_decoded", "mojibake": "rows_with_mojibake_fixed",
             "characters": "rows_with_characters_normalised"}
    return {label: sum(step in found for found in steps) for step, label in names.items()}


def normalize_text(value):
    """Strip HTML, decode percent-escapes, repair encoding debris (ftfy), collapse whitespace, strip the ends."""
    return re.sub(r"\s+", " ", ftfy.fix_text(decode_percent_escapes(strip_html(value)))).strip()


# De-duplication on a normalised question, the seeded subset, and the split.
def question_key(question):
    """Normalised form of a question for near-duplicate detection (case, spaces, punctuation ignored)."""
    return re.sub(r"\s+", " ", question.lower().translate(str.maketrans("", "", string.punctuation))).strip()


def clean_pairs(df):
    """Drop non-text, empty, exact-duplicate and same-question rows (after normalize_text); return (frame, drops)."""
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


# Pairs longer than one packed row are dropped (the rule above), and `data_pipeline` runs every step
# in order — the terminal training script (`tools/medllm_train.py`) calls the same function.
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


# Token lengths and the statistics table. The lengths also decide **how long an answer may be**:
# `max_new_tokens` is the 90th percentile of the training answers' length in tokens (plus the end-of-turn
# token), capped by the profile (`cpu` 160, `gpu` 256, `smoke` 24) — enough for most reference answers,
# without letting a rambling answer run on for ever. The value and its derivation go to `run_config.json`.
NEW_TOKENS_QUANTILE = 0.9  # share of the training answers (with their end-of-turn token) that fit in max_new_tokens
MIN_NEW_TOKENS = 16


def max_new_tokens_from_data(answer_tokens, cap, quantile=NEW_TOKENS_QUANTILE, floor=MIN_NEW_TOKENS):
    """Tokens an answer may take: the quantile of the answers' length + 1 (end of turn), within [floor, cap]."""
    lengths = np.asarray(list(answer_tokens), dtype=float)
    if not len(lengths):
        return int(cap)
    return int(min(cap, max(min(floor, cap), math.ceil(np.quantile(lengths + 1, quantile)))))


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


# The training format
#
# Each pair becomes a *conversational prompt/completion* record: the prompt is the system prompt plus the
# question, the completion is the assistant's answer. TRL renders both with the model's **own chat
# template** — the same rendering the evaluation and the chat UI use — and computes the loss on the
# completion tokens only, so the model learns to answer, not to repeat questions.
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
