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
        lib.map_columns(pd.DataFrame({"prompt": ["x"], "response": ["y"]}))
    message = str(error.value)
    assert "prompt" in message and "response" in message
    assert "instruction/input/output" in message and "question/answer" in message


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
    from nbload import NOTEBOOK

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
