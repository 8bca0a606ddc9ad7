"""Section 6: safety rails, input checks, history budget, streaming and the Gradio app (no browser)."""

import itertools
import sys
import threading
from pathlib import Path

import pytest

RED_FLAGS = {
    "I have crushing chest pain and I'm short of breath": "chest pain",
    "I think I'm having a heart attack": "chest pain",
    "Someone is choking!": "breathing",
    "Help, can't breathe after eating peanuts": "breathing",
    "I can’t breathe": "breathing",  # curly apostrophe
    "My dad's face is drooping and his speech is slurred": "stroke signs",
    "She has weakness on one side and slurred speech": "stroke signs",
    "I want to kill myself": "self-harm",
    "I feel suicidal tonight": "self-harm",
    "I took too many paracetamol tablets an hour ago": "overdose or poisoning",
    "My toddler swallowed a battery": "overdose or poisoning",
    "My throat is swelling after a bee sting": "anaphylaxis",
    "I cannot stop the bleeding from my leg": "severe bleeding",
    "My son had a seizure and won't wake up": "seizure or unconscious",
}
LOOK_ALIKES = [
    "What is the mechanism of chest pain in angina?",
    "How does nitroglycerin help chest pain?",
    "What causes chest pain and shortness of breath in pulmonary embolism?",
    "What is a heart attack?",
    "What are the classic signs of a stroke?",
    "How is anaphylaxis treated?",
    "What is type I hypersensitivity (anaphylaxis)?",
    "What are the risk factors for suicide?",
    "What is the antidote for paracetamol overdose?",
    "What causes febrile seizures?",
    "What causes coughing up blood?",
    "I have had a mild headache since yesterday",
]


def matched_rules(lib, message):
    """Names of the red-flag rules a message raises; each of their notices starts with the rule's notice text."""
    notices = lib.red_flag_notices(message)
    names = [found.rule.name for found in lib.red_flag_findings(message)]
    assert len(notices) == len(names) and all(n.startswith(found.rule.notice) and "Why this notice" in n
                                              for n, found in zip(notices, lib.red_flag_findings(message)))
    return names


@pytest.mark.parametrize("message,rule", RED_FLAGS.items())
def test_red_flags_fire_on_personal_emergencies(lib, message, rule):
    assert rule in matched_rules(lib, message)


@pytest.mark.parametrize("message", LOOK_ALIKES)
def test_textbook_look_alikes_are_not_emergencies(lib, message):
    assert lib.red_flag_notices(message) == []


def test_red_flag_table_is_complete_and_well_formed(lib):
    names = [rule.name for rule in lib.RED_FLAG_RULES]
    assert len(names) == len(set(names)) and 12 <= len(names) <= 30
    assert all(rule.triggers and "emergency" in rule.notice.lower() for rule in lib.RED_FLAG_RULES)
    used = {concept for rule in lib.RED_FLAG_RULES for trigger in rule.triggers
            for part in lib.parse_trigger(trigger)[0] for group in (part[0], part[2] or ()) for concept in group}
    vetoes = {veto for rule in lib.RED_FLAG_RULES for trigger in rule.triggers
              for veto in lib.parse_trigger(trigger)[1]}
    vital = {name for name in used if name.startswith(lib.VITAL_PREFIXES)}
    assert used - vital <= set(lib.CONCEPTS) and vetoes - {"mild"} <= set(lib.CONCEPTS)  # no typo in a trigger


@pytest.mark.parametrize("message", ["Write a python function to sort a list", "Who won the football world cup?",
                                     "Give me a recipe for chocolate cake", "Should I invest in bitcoin?"])
def test_off_topic_questions_get_a_notice(lib, message):
    assert lib.off_topic_notice(message) is not None


@pytest.mark.parametrize("message", ["Is football good for my heart?", "I was bitten by a python, what should I do?",
                                     "What is the function of the liver?", "What is the treatment of gout?"])
def test_medical_questions_are_on_topic(lib, message):
    assert lib.off_topic_notice(message) is None


def test_input_validation(lib):
    assert lib.validate_input("   \n ") == (None, lib.EMPTY_INPUT_REPLY)
    assert lib.validate_input(None)[0] is None
    assert lib.validate_input("  What is gout?  ") == ("What is gout?", None)
    question, notice = lib.validate_input("x" * 2500, max_chars=2000)
    assert len(question) == 2000 and "2,500" in notice and "2,000" in notice


def conversation(turns):
    """A history of `turns` question/answer pairs, each long enough to cost tokens."""
    history = []
    for index in range(turns):
        history += [{"role": "user", "content": f"Question {index}: " + "what about the kidneys? " * 10},
                    {"role": "assistant", "content": f"Answer {index}: " + "the kidneys filter blood. " * 10}]
    return history


def test_history_is_cut_from_the_oldest_turn(lib, tokenizer):
    history = conversation(6)
    full = lib.prompt_tokens(tokenizer, lib.build_messages("And the liver?", history))
    messages, dropped = lib.fit_history(tokenizer, "And the liver?", history, budget=full - 1)
    assert dropped == 1 and messages[1]["content"].startswith("Question 1")
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "And the liver?"}
    messages, dropped = lib.fit_history(tokenizer, "And the liver?", history, budget=full)
    assert dropped == 0 and len(messages) == 14
    _, dropped = lib.fit_history(tokenizer, "And the liver?", history, budget=10)
    assert dropped == 6
    assert lib.history_notice(0) is None and "2 turn" in lib.history_notice(2)


def test_context_limit_uses_the_model_config(lib, embedded_model):
    model, tokenizer = embedded_model
    assert lib.context_limit(model, tokenizer) == model.config.max_position_embeddings


def test_sampling_is_greedy_at_zero_temperature(lib):
    assert lib.sampling_kwargs(0, 0.9) == {"do_sample": False}
    assert lib.sampling_kwargs(0.7, 0.9) == {"do_sample": True, "temperature": 0.7, "top_p": 0.9}


def test_reply_config_keeps_the_chosen_repetition_settings(lib, embedded_model):
    model, tokenizer = embedded_model
    chosen = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=4"], 96)
    greedy = lib.reply_config(chosen, 20, 0.0, 0.9)
    assert greedy.no_repeat_ngram_size == 4 and greedy.max_new_tokens == 20 and not greedy.do_sample
    assert greedy.temperature is None and greedy.top_p is None
    greedy.validate(strict=True)
    sampled = lib.reply_config(chosen, 30, 0.5, 0.8)
    assert sampled.do_sample and sampled.temperature == 0.5 and sampled.top_p == 0.8
    assert sampled.no_repeat_ngram_size == 4
    sampled.validate(strict=True)
    assert chosen.max_new_tokens == 96 and not chosen.do_sample  # the chosen settings themselves are not changed
    from_sampling = lib.decoding_config(model, tokenizer, lib.DECODING_GRID["sampling (T=0.7, top_p=0.9, seeded)"], 9)
    lib.reply_config(from_sampling, 9, 0, 0.9).validate(strict=True)  # greedy from a sampling choice: no leftovers


def test_stream_reply_uses_the_chosen_generation_config(lib, peft_model, tokenizer):
    chosen = lib.decoding_config(peft_model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=3"], 64)
    texts = list(lib.stream_reply(peft_model, tokenizer, lib.build_messages("What is anaemia?"), max_new_tokens=6,
                                  generation_config=chosen))
    assert texts and 0 < len(tokenizer(texts[-1], add_special_tokens=False)["input_ids"]) <= 7  # the slider's length
    shown, _ = list(lib.chat_turn(peft_model, tokenizer, "What is gout?", [], [], max_new_tokens=4,
                                  generation_config=chosen))[-1]
    assert shown[-1]["content"].strip()
    notes, base, tuned = list(lib.compare_turn(peft_model, tokenizer, "What is gout?", max_new_tokens=3,
                                               generation_config=chosen))[-1]
    assert base.strip() and tuned.strip()


def test_stream_reply_yields_growing_text(lib, peft_model, tokenizer):
    texts = list(lib.stream_reply(peft_model, tokenizer, lib.build_messages("What is anaemia?"), max_new_tokens=8))
    assert len(texts) >= 2 and texts[-1].strip()
    assert all(later.startswith(earlier) and len(later) > len(earlier) for earlier, later in itertools.pairwise(texts))
    base = list(lib.stream_reply(peft_model, tokenizer, lib.build_messages("What is anaemia?"), max_new_tokens=3,
                                 adapter=False, lock=threading.Lock()))
    assert texts[-1].startswith(base[-1])  # a fresh LoRA adapter (B = 0) changes nothing
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [module for module in peft_model.modules() if isinstance(module, BaseTunerLayer)]
    assert layers and not any(layer.disable_adapters for layer in layers)  # the adapter is switched back on


def test_stop_event_ends_generation_early(lib, peft_model, tokenizer):
    stop = threading.Event()
    stop.set()
    texts = list(lib.stream_reply(peft_model, tokenizer, lib.build_messages("What is anaemia?"), max_new_tokens=40,
                                  stop_event=stop))
    assert len(tokenizer(texts[-1] if texts else "")["input_ids"]) <= 2


class BrokenModel:
    """A model whose generate always fails, to check that errors reach the chat."""

    device = "cpu"

    def __init__(self, config):
        """Borrow a real config so the context limit can be read."""
        self.config = config

    def generate(self, **kwargs):
        """Fail like an out-of-memory GPU would."""
        raise RuntimeError("CUDA out of memory")

    def disable_adapter(self):
        """Not a PEFT model."""
        raise AttributeError("no adapter")


def test_chat_turn_streams_notices_first_then_the_answer(lib, peft_model, tokenizer):
    turns = list(lib.chat_turn(peft_model, tokenizer, "I have crushing chest pain right now", [], [], max_new_tokens=4))
    shown, history = turns[-1]
    assert shown[0] == {"role": "user", "content": "I have crushing chest pain right now"}
    assert shown[1]["content"].startswith("🚨") and "heart attack" in shown[1]["content"]
    assert shown[2]["content"].strip() and not shown[2]["content"].startswith("🚨")
    assert [m["role"] for m in history] == ["user", "assistant"] and history[1] == shown[2]
    assert turns[0][1] == []  # the model history never contains notices


def test_chat_turn_drops_old_turns_with_a_notice(lib, peft_model, tokenizer):
    history = conversation(4)
    turns = list(lib.chat_turn(peft_model, tokenizer, "And the liver?", [], history, max_new_tokens=4,
                               context_tokens=lib.prompt_tokens(tokenizer, lib.build_messages("And the liver?",
                                                                                             history[4:])) + 4))
    shown, new_history = turns[-1]
    assert any(message["content"].startswith("📜") for message in shown)
    assert len(new_history) == 6 and new_history[0]["content"].startswith("Question 2")


def test_chat_turn_on_empty_input_does_not_call_the_model(lib, embedded_model):
    model = BrokenModel(embedded_model[0].config)
    turns = list(lib.chat_turn(model, embedded_model[1], "  ", [], [], max_new_tokens=8))
    assert turns == [([{"role": "assistant", "content": lib.EMPTY_INPUT_REPLY}], [])]


def test_chat_turn_turns_errors_into_a_message(lib, embedded_model):
    model = BrokenModel(embedded_model[0].config)
    shown, history = list(lib.chat_turn(model, embedded_model[1], "What is gout?", [], [], max_new_tokens=8))[-1]
    assert shown[-1]["content"].startswith("❌") and "CUDA out of memory" in shown[-1]["content"]
    assert history == []


def test_chat_turn_cuts_long_input_with_a_notice(lib, peft_model, tokenizer):
    shown, _ = list(lib.chat_turn(peft_model, tokenizer, "What is gout? " * 20, [], [], max_new_tokens=2,
                                  max_chars=50))[-1]
    assert len(shown[0]["content"]) == 50 and shown[1]["content"].startswith("✂️")


def test_compare_turn_answers_with_both_models(lib, peft_model, tokenizer):
    notes, base, tuned = list(lib.compare_turn(peft_model, tokenizer, "What is gout?", max_new_tokens=3,
                                               lock=threading.Lock()))[-1]
    assert notes == "" and base.strip() and tuned.strip()


def test_compare_turn_reports_errors_per_model(lib, embedded_model):
    model = BrokenModel(embedded_model[0].config)
    notes, base, tuned = list(lib.compare_turn(model, embedded_model[1], "Write python code", max_new_tokens=4))[-1]
    assert "programming" in notes and base.startswith("❌") and tuned.startswith("❌")


def test_build_ui_returns_blocks(lib, peft_model, tokenizer):
    import gradio as gr

    demo = lib.build_ui(peft_model, tokenizer, {"max_new_tokens": 12})
    assert isinstance(demo, gr.Blocks)
    assert demo.config["title"].startswith("Medical")
    props = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"]}
    assert props["chat-temperature"]["value"] == 0.0 and "decoding" not in props


def test_build_ui_starts_at_the_chosen_decoding(lib, peft_model, tokenizer):
    chosen = lib.decoding_config(peft_model, tokenizer, lib.DECODING_GRID["sampling (T=0.7, top_p=0.9, seeded)"], 12)
    demo = lib.build_ui(peft_model, tokenizer, {"max_new_tokens": 12, "generation_config": chosen,
                                                "decoding": "sampling (T=0.7, top_p=0.9, seeded)"})
    props = {c["props"].get("elem_id"): c["props"] for c in demo.config["components"]}
    assert props["chat-temperature"]["value"] == 0.7 and props["compare-top-p"]["value"] == 0.9
    assert "chosen on the validation split" in props["decoding"]["value"]


def test_load_finetuned_restores_a_saved_adapter(lib, peft_model, tokenizer, tmp_path, embedded_model):
    with pytest.raises(FileNotFoundError, match="Section 4"):
        lib.load_finetuned(lib.embedded_model_dir(), tmp_path / "missing", "cpu")
    peft_model.save_pretrained(tmp_path / "adapter")
    model, loaded_tokenizer = lib.load_finetuned(lib.embedded_model_dir(), tmp_path / "adapter", "cpu")
    assert hasattr(model, "disable_adapter") and loaded_tokenizer.eos_token == tokenizer.eos_token


def work_cells():
    """The source of Section 6's work cells (not its imports: the namespace holds the package), from nb/06_ui.py."""
    import jupytext

    notebook = jupytext.read(Path(__file__).resolve().parent.parent / "nb" / "06_ui.py", fmt="py:percent")
    return [cell.source for cell in notebook.cells
            if cell.cell_type == "code" and "imports" not in cell.metadata.get("tags", [])]


def test_work_cells_reload_the_adapter_and_launch_on_localhost(lib, peft_model, tokenizer, tmp_path):
    peft_model.save_pretrained(tmp_path / "models" / "final_adapter")
    lib.decoding_config(peft_model, tokenizer, lib.DECODING_GRID["no_repeat_ngram_size=4"], 8).save_pretrained(
        tmp_path / "models" / "final_adapter")
    notices = []
    settings = {"launch_ui": True, "max_new_tokens": 8, "device": "cpu", "dtype": "float32"}
    namespace = {**vars(lib), "sys": sys, "S": settings, "OUT": tmp_path, "MODEL_PATH": lib.embedded_model_dir(),
                 "announce": notices.append}  # sys, S, OUT, MODEL_PATH: globals of the set-up cells
    for source in work_cells():
        exec(source, namespace)  # noqa: S102 - running the notebook's own cells is the point
    try:
        assert notices and "kernel restarted" in notices[0]
        assert hasattr(namespace["ft_model"], "disable_adapter")
        assert namespace["GENERATION_CONFIG"].no_repeat_ngram_size == 4  # the decoding saved with the adapter
        assert namespace["UI_URL"].startswith("http://127.0.0.1:")
    finally:
        namespace["demo"].close()
