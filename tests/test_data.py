"""Data pipeline and configuration: column mapping, cleaning, splitting, bad input, parameters."""

import ast
import json

import pandas as pd
import pytest


def test_map_columns_medical_meadow_and_question_answer(lib):
    meadow = pd.DataFrame({"instruction": ["Answer this question truthfully"], "input": ["Q?"], "output": ["A."]})
    assert lib.map_columns(meadow).to_dict("records") == [{"question": "Q?", "answer": "A."}]
    qa = pd.DataFrame({"question": ["Q2?"], "answer": ["A2."], "extra": [1]})
    assert list(lib.map_columns(qa).columns) == ["question", "answer"]


def test_map_columns_refuses_unknown_shape_listing_columns(lib):
    with pytest.raises(ValueError) as error:
        lib.map_columns(pd.DataFrame({"text": ["x"], "label": ["y"]}))
    message = str(error.value)
    assert "text" in message and "label" in message
    assert "instruction/input/output" in message and "question/answer" in message and "prompt/response" in message


def test_clean_pairs_counts_every_dropped_row(lib):
    frame = pd.DataFrame({
        "question": ["What is  insulin?", "What is insulin?", "", None, "what is INSULIN", "Define anemia.", 7],
        "answer": ["A hormone.", "A hormone.", "x", "y", "Another answer.", "  Low hemoglobin. ", "z"],
    })
    clean, dropped = lib.clean_pairs(frame)
    assert dropped == {"non_text": 2, "empty": 1, "exact_duplicates": 1, "near_duplicate_questions": 1}
    assert clean.to_dict("records") == [{"question": "What is insulin?", "answer": "A hormone."},
                                        {"question": "Define anemia.", "answer": "Low hemoglobin."}]


def test_split_is_85_10_5_disjoint_and_seeded(lib):
    frame = pd.DataFrame({"question": [f"Question number {i}?" for i in range(200)], "answer": ["a"] * 200})
    splits = lib.split_frame(frame, seed=1)
    assert {k: len(v) for k, v in splits.items()} == {"train": 170, "val": 20, "test": 10}
    keys = {name: set(part["question"].map(lib.question_key)) for name, part in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["val"] and not keys["val"] & keys["test"]
    again = lib.split_frame(frame, seed=1)
    assert all(again[k].equals(splits[k]) for k in splits)
    assert not lib.split_frame(frame, seed=2)["test"].equals(splits["test"])


def test_no_test_question_leaks_after_cleaning(lib):
    questions = [f"What causes disease {i % 50}?" for i in range(100)]  # each question twice, differently cased
    questions = [q if i < 50 else q.upper() + "  " for i, q in enumerate(questions)]
    frame = pd.DataFrame({"question": questions, "answer": [f"answer {i}" for i in range(100)]})
    clean, dropped = lib.clean_pairs(frame)
    assert dropped["near_duplicate_questions"] == 50
    splits = lib.split_frame(clean, seed=0)
    test_keys = set(splits["test"]["question"].map(lib.question_key))
    assert not test_keys & set(splits["train"]["question"].map(lib.question_key))


def test_draw_subset_is_seeded_and_bounded(lib):
    frame = pd.DataFrame({"question": list("abcdefghij"), "answer": list("0123456789")})
    assert len(lib.draw_subset(frame, 4, seed=3)) == 4
    assert lib.draw_subset(frame, 4, seed=3).equals(lib.draw_subset(frame, 4, seed=3))
    assert len(lib.draw_subset(frame, 100, seed=3)) == 10


def test_read_table_formats_and_missing_path(lib, tmp_path):
    rows = [{"question": "Q?", "answer": "A."}]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.jsonl").write_text(json.dumps(rows[0]) + "\n")
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    for name in ("a.json", "b.jsonl", "c.csv"):
        assert lib.map_columns(lib.read_table(tmp_path / name)).to_dict("records") == rows
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        lib.read_table(tmp_path / "nowhere.json")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.txt"):
        lib.read_table(tmp_path / "d.txt")


def test_embedded_sample_is_clean_and_in_schema(lib):
    raw = lib.read_table(lib.embedded_data_path())
    assert {"instruction", "input", "output"} <= set(raw.columns)
    clean, dropped = lib.clean_pairs(lib.map_columns(raw))
    assert len(clean) >= 200 and sum(dropped.values()) == 0


def test_unknown_profile_lists_valid_ones(lib):
    with pytest.raises(ValueError) as error:
        lib.resolve_profile("turbo", cuda_available=False)
    assert all(name in str(error.value) for name in ("auto", "gpu", "cpu", "smoke"))
    assert lib.resolve_profile("auto", cuda_available=True).name == "gpu"
    assert lib.resolve_profile("auto", cuda_available=False).name == "cpu"


def test_environment_overrides_only_defaults(lib):
    params = dict(lib.PARAM_DEFAULTS)
    env = {"MEDLLM_PROFILE": "smoke", "MEDLLM_MAX_EXAMPLES": "40", "MEDLLM_LAUNCH_UI": "false"}
    resolved = lib.apply_env_overrides(params, env)
    assert resolved["PROFILE"] == "smoke" and resolved["MAX_EXAMPLES"] == 40 and resolved["LAUNCH_UI"] is False
    injected = {**params, "PROFILE": "cpu"}  # a value papermill injected wins over the environment
    assert lib.apply_env_overrides(injected, env)["PROFILE"] == "cpu"


def test_run_settings_follow_profile_and_overrides(lib):
    device = {"device": "cpu", "device_name": "x", "dtype": "float32", "bf16": False, "fp16": False}
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "smoke", "EPOCHS": 2}, device)
    assert settings["profile"] == "smoke" and settings["epochs"] == 2.0
    assert settings["max_examples"] == lib.PROFILES["smoke"].max_examples
    assert lib.build_run_settings(dict(lib.PARAM_DEFAULTS), device)["profile"] == "cpu"


def test_chat_format_labels_only_the_answer(lib, tokenizer):
    encoded = lib.encode_for_loss(tokenizer, "What does insulin do?", "It lowers blood glucose.")
    prompt_ids = tokenizer.apply_chat_template(lib.build_messages("What does insulin do?"),
                                               add_generation_prompt=True, tokenize=True, return_dict=False)
    assert encoded["labels"][:len(prompt_ids)] == [-100] * len(prompt_ids)
    answer = tokenizer.decode([t for t in encoded["labels"] if t != -100])
    assert answer.startswith("It lowers blood glucose.")
    assert lib.SYSTEM_PROMPT in tokenizer.decode(encoded["input_ids"])
    record = lib.to_prompt_completion(pd.DataFrame({"question": ["Q?"], "answer": ["A."]}))[0]
    assert record["prompt"][-1] == {"role": "user", "content": "Q?"}
    assert record["completion"] == [{"role": "assistant", "content": "A."}]


def test_papermill_sees_every_parameter_with_its_default(lib):
    import papermill
    from conftest import ROOT

    NOTEBOOK = ROOT / "medical-llm-pipeline-standalone-colab.ipynb"

    found = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(found) == list(lib.PARAM_DEFAULTS)  # a line papermill cannot parse would be missing here
    assert {name: ast.literal_eval(found[name]["default"]) for name in found} == lib.PARAM_DEFAULTS


# Bad data files: one test per case, each asserting its message.

def test_html_tags_and_entities_are_stripped_before_deduplication(lib):
    frame = pd.DataFrame({"question": ["What is <b>gout</b>?", "What is gout?", "Q &amp; A <br/>about gout"],
                          "answer": ["A <i>crystal</i> arthritis.", "A crystal arthritis.", "Text &lt;3"]})
    assert int(frame["question"].map(lib.has_html).sum()) == 2 and not lib.has_html("What is gout? 3 < 5")
    clean, dropped = lib.clean_pairs(frame)
    assert dropped["exact_duplicates"] == 1  # <b>gout</b> and gout are duplicates
    assert clean.to_dict("records") == [{"question": "What is gout?", "answer": "A crystal arthritis."},
                                        {"question": "Q & A about gout", "answer": "Text <3"}]


def test_malformed_jsonl_line_is_reported_with_its_number(lib, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"question": "Q1?", "answer": "A1."}\n\n{"question": "Q2?", "answer": "A2."\n')
    with pytest.raises(ValueError, match=r"Line 3 of .*bad\.jsonl is not valid JSON") as error:
        lib.read_table(path)
    assert "Fix or delete that line" in str(error.value)


def test_non_utf8_csv_is_read_with_an_announced_fallback(lib, tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes("question,answer\nWhat is caf\u00e9 au lait?,A skin spot \u2013 benign.\n".encode("cp1252"))
    frame = lib.read_table(path)
    assert frame.loc[0, "question"] == "What is caf\u00e9 au lait?"
    assert frame.loc[0, "answer"].endswith("\u2013 benign.")
    assert frame.attrs["encoding"] == "cp1252"
    out = capsys.readouterr().out
    assert "latin.csv is not UTF-8 (byte 0xe9" in out and "read it as cp1252" in out


def test_non_utf8_json_is_refused_clearly(lib, tmp_path):
    path = tmp_path / "latin.json"
    path.write_bytes('[{"question": "caf\u00e9?", "answer": "x"}]'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not UTF-8 \(byte 0xe9.*re-save it as UTF-8"):
        lib.read_table(path)


def test_json_object_instead_of_rows_is_refused_with_the_expected_shape(lib, tmp_path):
    path = tmp_path / "object.json"
    path.write_text(json.dumps({"version": 1, "data": [{"question": "Q?", "answer": "A."}]}))
    with pytest.raises(ValueError) as error:
        lib.read_table(path)
    message = str(error.value)
    assert "holds one JSON object (keys 'version', 'data'), not a list of rows" in message
    assert '[{"question": "...", "answer": "..."}, ...]' in message
    (tmp_path / "scalars.json").write_text(json.dumps([{"question": "Q?", "answer": "A."}, "stray"]))
    with pytest.raises(ValueError, match=r"Row 2 of .*scalars\.json is a str, not an object"):
        lib.read_table(tmp_path / "scalars.json")


def test_malformed_csv_and_empty_file_get_a_message(lib, tmp_path):
    (tmp_path / "ragged.csv").write_text("question,answer\nQ?,A.\nQ2?,A2.,extra,more\n")
    with pytest.raises(ValueError, match=r"is not a well-formed CSV .*quoted"):
        lib.read_table(tmp_path / "ragged.csv")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"empty\.jsonl is empty"):
        lib.read_table(tmp_path / "empty.jsonl")


def test_examples_longer_than_a_packed_row_are_dropped_and_counted(lib, tokenizer):
    frame = pd.DataFrame({"question": ["What is gout?", "Explain renal physiology."],
                          "answer": ["A crystal arthritis.", "The kidney filters blood. " * 60]})
    lengths = lib.templated_lengths(frame, tokenizer)
    assert lengths[0] < 100 < lengths[1]
    kept, dropped = lib.drop_too_long(frame, tokenizer, max_length=100)
    assert dropped == 1 and kept["question"].tolist() == ["What is gout?"]
    assert lib.drop_too_long(frame, tokenizer, max_length=lengths[1])[1] == 0  # exactly one row long is kept


def test_every_count_lands_in_data_statistics(lib, tokenizer):
    frame = pd.DataFrame({"question": ["What is gout?", "Define anemia.", "What is insulin?"],
                          "answer": ["A crystal arthritis.", "Low hemoglobin.", "A hormone."]})
    splits = lib.split_frame(frame, seed=0)
    stats = lib.data_statistics(lib.length_table(splits, tokenizer), {"empty": 2, "too_long": 3}, 9,
                                {"rows_with_html_stripped": 4})
    cleaning = stats[stats["kind"] == "cleaning"].set_index("field")["characters_count"].to_dict()
    assert cleaning == {"raw_rows": 9, "rows_with_html_stripped": 4, "dropped_empty": 2, "dropped_too_long": 3}


# The data files people have (issue 20): each case read through read_table → map_columns → clean_pairs.

def pipeline(lib, path):
    """(clean pairs, the changes announced while reading and mapping) of a data file."""
    pairs = lib.map_columns(lib.read_table(path))
    clean, _ = lib.clean_pairs(pairs)
    return clean, pairs.attrs["changes"]


def test_classic_alpaca_takes_the_question_from_the_instruction(lib, tmp_path, capsys):
    rows = [{"instruction": "What is gout?", "input": "", "output": "A crystal arthritis."},
            {"instruction": "Define anaemia.", "input": "", "output": "Too little haemoglobin."},
            {"instruction": "Summarise this note.", "input": "Pt c/o chest pain.", "output": "Chest pain."}]
    (tmp_path / "alpaca.json").write_text(json.dumps(rows))
    clean, changes = pipeline(lib, tmp_path / "alpaca.json")
    assert clean["question"].tolist() == ["What is gout?", "Define anaemia.", "Summarise this note. Pt c/o chest pain."]
    assert changes == {"questions_from_instruction": 2, "questions_instruction_plus_input": 1}
    out = capsys.readouterr().out
    assert "2 rows: the question is the instruction" in out
    assert "1 rows: the question is the instruction followed" in out


def test_medical_meadow_keeps_the_question_in_input(lib):
    meadow = pd.DataFrame({"instruction": ["Answer this question truthfully"] * 3, "input": ["Q1?", "Q2?", ""],
                           "output": ["A1.", "A2.", "A3."]})
    pairs = lib.map_columns(meadow)
    assert pairs["question"].tolist() == ["Q1?", "Q2?", "Answer this question truthfully"]
    assert pairs.attrs["changes"] == {"questions_from_instruction": 1}


def test_numbers_are_used_as_text_and_counted(lib, tmp_path):
    (tmp_path / "numbers.json").write_text(json.dumps([{"question": "Normal blood pH?", "answer": 7.4},
                                                       {"question": "Bones in an adult?", "answer": 206},
                                                       {"question": 42, "answer": "The answer."}]))
    clean, changes = pipeline(lib, tmp_path / "numbers.json")
    assert clean["answer"].tolist() == ["7.4", "206", "The answer."] and clean["question"].tolist()[2] == "42"
    assert changes == {"questions_numbers_as_text": 1, "answers_numbers_as_text": 2}


@pytest.mark.parametrize("columns", [("Question", "Answer"), ("QUESTION ", "answer"), ("prompt", "response"),
                                     ("Prompt", "Completion"), ("input", "output"), ("Input", "Output")])
def test_column_names_match_case_insensitively_and_by_alias(lib, columns, capsys):
    frame = pd.DataFrame({columns[0]: ["What is gout?"], columns[1]: ["A crystal arthritis."], "id": [1]})
    expected = [{"question": "What is gout?", "answer": "A crystal arthritis."}]
    assert lib.map_columns(frame).to_dict("records") == expected
    assert f"Using the columns {columns[0]} / {columns[1]}" in capsys.readouterr().out


def test_parquet_files_are_read_and_a_parquet_named_csv_is_named(lib, tmp_path, capsys):
    frame = pd.DataFrame({"question": ["What is gout?", "Define anaemia."], "answer": ["Arthritis.", "Low Hb."]})
    frame.to_parquet(tmp_path / "data.parquet")
    frame.to_parquet(tmp_path / "disguised.csv")
    assert lib.read_table(tmp_path / "data.parquet").equals(frame)
    disguised = lib.read_table(tmp_path / "disguised.csv")
    assert disguised.equals(frame) and disguised.attrs["changes"] == {"read_parquet_by_content": 2}
    assert "disguised.csv is a Parquet file (it starts with PAR1), not .csv" in capsys.readouterr().out


@pytest.mark.parametrize("magic,kind", [(b"PK\x03\x04rest", "a zip archive"),
                                        (b"SQLite format 3\x00", "an SQLite database"),
                                        (b"%PDF-1.7", "a PDF document"), (b"\x00\x01\x02\x03" * 20, "a binary file")])
def test_other_binary_files_are_refused_by_their_format(lib, tmp_path, magic, kind):
    (tmp_path / "data.csv").write_bytes(magic)
    with pytest.raises(ValueError, match=f"data.csv is {kind}.*not a .csv table"):
        lib.read_table(tmp_path / "data.csv")


def test_a_gzip_compressed_file_is_unpacked(lib, tmp_path):
    import gzip

    (tmp_path / "data.jsonl").write_bytes(gzip.compress(b'{"question": "Q?", "answer": "A."}\n'))
    frame = lib.read_table(tmp_path / "data.jsonl")
    assert frame.to_dict("records") == [{"question": "Q?", "answer": "A."}]
    assert frame.attrs["changes"] == {"read_gzip_unpacked": 1}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_with_or_without_a_bom_is_decoded(lib, tmp_path, encoding, capsys):
    text = "question\tanswer\nWhat is caf\u00e9 au lait?\tA skin spot \u2013 benign.\n"
    (tmp_path / "unicode.txt").write_bytes(text.encode(encoding))  # Excel's "Unicode Text": UTF-16, tab-separated
    frame = lib.read_table(tmp_path / "unicode.txt")
    expected = [{"question": "What is caf\u00e9 au lait?", "answer": "A skin spot \u2013 benign."}]
    assert frame.to_dict("records") == expected
    assert frame.attrs["changes"] == {"read_utf16": 1, "read_tab_separated": 1}
    assert "UTF-16 text" in capsys.readouterr().out


@pytest.mark.parametrize("delimiter,name", [(";", "semicolon"), ("\t", "tab"), ("|", "bar"), (",", None)])
def test_the_separator_is_sniffed(lib, tmp_path, delimiter, name):
    frame = pd.DataFrame({"question": ["What is gout; really?", "Define anaemia, briefly."],
                          "answer": ["A crystal, painful arthritis.", "Low Hb; often iron."]})
    frame.to_csv(tmp_path / "data.csv", sep=delimiter, index=False)
    read = lib.read_table(tmp_path / "data.csv")
    assert read.to_dict("records") == frame.to_dict("records")
    assert read.attrs["changes"] == ({f"read_{name}_separated": 2} if name else {})


@pytest.mark.parametrize("document", [
    {"question": ["Q1?", "Q2?"], "answer": ["A1.", "A2."]},
    {"question": {"0": "Q1?", "1": "Q2?"}, "answer": {"0": "A1.", "1": "A2."}},
    {"columns": ["question", "answer"], "data": [["Q1?", "A1."], ["Q2?", "A2."]]}])
def test_column_oriented_json_is_read_as_rows(lib, tmp_path, document, capsys):
    (tmp_path / "columns.json").write_text(json.dumps(document))
    frame = lib.read_table(tmp_path / "columns.json")
    assert lib.map_columns(frame).to_dict("records") == [{"question": "Q1?", "answer": "A1."},
                                                         {"question": "Q2?", "answer": "A2."}]
    assert frame.attrs["changes"] == {"read_json_columns": 2} and "holds columns" in capsys.readouterr().out


def test_reading_and_mapping_changes_reach_data_statistics(lib, tokenizer):
    frame = pd.DataFrame({"question": ["What is gout?", "Define anaemia.", "What is insulin?"],
                          "answer": ["A crystal arthritis.", "Low hemoglobin.", "A hormone."]})
    splits = lib.split_frame(frame, seed=0)
    stats = lib.data_statistics(lib.length_table(splits, tokenizer), {}, 3,
                                {"read_semicolon_separated": 3, "questions_from_instruction": 2})
    cleaning = stats[stats["kind"] == "cleaning"].set_index("field")["characters_count"].to_dict()
    assert cleaning["read_semicolon_separated"] == 3 and cleaning["questions_from_instruction"] == 2
# Text debris (issue 19): URL escapes and mojibake repaired before de-duplication, and counted.

@pytest.mark.parametrize("raw, expected", [
    ("When to seek urgent medical care when I have Parkinson%27s disease ?",
     "When to seek urgent medical care when I have Parkinson's disease ?"),
    ("Who is at highest risk for M%C3%A9ni%C3%A8re%27s disease ?", "Who is at highest risk for Ménière's disease ?"),
    ("What to expect if I have Corns %26 calluses", "What to expect if I have Corns & calluses"),
    ("50% of patients improve; 10%-20% relapse; 100%", "50% of patients improve; 10%-20% relapse; 100%"),
    ("a 5%CA solution", "a 5%CA solution"),  # %CA alone is not valid UTF-8: a real percentage, kept
    ("50% of Beh%C3%A7et%27s patients", "50% of Behçet's patients"),
])
def test_percent_escapes_are_decoded_and_real_percentages_kept(lib, raw, expected):
    assert lib.decode_percent_escapes(raw) == expected


def test_normalize_text_repairs_encoding_debris_with_ftfy(lib):
    assert lib.normalize_text("cuts (about Â½ to Â¾ inch)") == "cuts (about ½ to ¾ inch)"  # UTF-8 read as latin-1
    assert lib.normalize_text("a fever of 101 Â°F") == "a fever of 101 °F"
    assert lib.normalize_text("dyspepsia ， nausea：vomiting") == "dyspepsia , nausea:vomiting"  # full-width
    assert lib.normalize_text("five “sudden” signs  of <b>stroke</b>") == 'five "sudden" signs of stroke'
    assert lib.normalize_text("Parkinson%27s%20disease") == "Parkinson's disease"
    assert lib.normalize_text("A 50% risk, café") == "A 50% risk, café"


def test_debris_is_repaired_before_deduplication_and_counted(lib):
    frame = pd.DataFrame({"question": ["What is Parkinson%27s disease?", "What is Parkinson's disease?",
                                       "What is Behçet's disease?", "Who gets Beh%C3%A7et%27s disease?",
                                       "How big are the cuts?", "What is 50% of 10?"],
                          "answer": ["A movement disorder.", "A movement disorder.", "A vasculitis.",
                                     "Young adults.", "Â½ inch, with “small” scars.", "Five."]})
    counts = lib.text_debris_counts(frame)
    assert counts == {"rows_with_percent_escapes_decoded": 2, "rows_with_mojibake_fixed": 1,
                      "rows_with_characters_normalised": 1}
    assert lib.debris_steps("Â½ inch, with “small” scars.") == {"mojibake", "characters"}
    assert lib.debris_steps("<i>x</i> Parkinson%27s") == {"html", "percent_escapes"} and lib.debris_steps(7) == set()
    clean, dropped = lib.clean_pairs(frame)
    assert dropped["exact_duplicates"] == 1  # "Parkinson%27s" and "Parkinson's" became one question
    assert clean["question"].tolist()[:3] == ["What is Parkinson's disease?", "What is Behçet's disease?",
                                              "Who gets Behçet's disease?"]
    assert clean["answer"].tolist()[3] == '½ inch, with "small" scars.'


def test_real_wikidoc_escapes_are_all_decoded(lib):
    from conftest import SHARED_DATA

    if not SHARED_DATA.exists():
        pytest.skip("the shared WikiDoc file is not on this machine")
    pairs = lib.map_columns(lib.read_table(SHARED_DATA))
    counts = lib.text_debris_counts(pairs)
    assert counts["rows_with_percent_escapes_decoded"] == 140  # the rows issue 19 found with %27 or %C3%..
    cleaned = pairs["question"].map(lib.normalize_text)
    assert not cleaned.str.contains(r"%[0-9A-Fa-f]{2}").any() and cleaned.str.contains("Parkinson's").any()
    assert pairs["answer"].str.contains("% of").sum() == pairs["answer"].map(lib.normalize_text).str.contains(
        "% of").sum()  # every real percentage survives


def test_max_new_tokens_from_the_data(lib):
    lengths = [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]  # + end of turn: 10..100; 90th percentile (linear) 91
    assert lib.max_new_tokens_from_data(lengths, cap=160) == 91
    assert lib.max_new_tokens_from_data(lengths, cap=50) == 50
    assert lib.max_new_tokens_from_data([1, 2, 3], cap=160) == lib.MIN_NEW_TOKENS
    assert lib.max_new_tokens_from_data([1, 2, 3], cap=8) == 8 and lib.max_new_tokens_from_data([], cap=24) == 24
    device = {"device": "cpu", "device_name": "x", "dtype": "float32", "bf16": False, "fp16": False}
    settings = lib.build_run_settings({**lib.PARAM_DEFAULTS, "PROFILE": "cpu"}, device)
    assert settings["max_new_tokens_cap"] == settings["max_new_tokens"] == lib.PROFILES["cpu"].max_new_tokens == 160
