"""The Gradio assistant: input limits, streaming replies, the chat and compare tabs."""


import contextlib
import copy
import inspect
import json
import threading
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from .data import build_messages
from .model import load_model_and_tokenizer
from .rails import normalize_input, off_topic_notice, red_flag_notices

# Input checks and the prompt budget
#
# Every message is normalised first (`normalize_input`, above: NFKC, invisible characters removed, look-alike
# letters mapped, blank lines collapsed). An empty message — also one of invisible characters only — gets a
# friendly prompt and no model call; a message over `MAX_INPUT_CHARS` is cut with a notice. The conversation
# is rendered with `build_messages`; when the prompt would not leave room for the answer (context length minus
# `max_new_tokens`), the oldest turns are dropped — and the chat says so.
MAX_INPUT_CHARS = 2000
EMPTY_INPUT_REPLY = "👋 Please type a medical question first — for example *“What are the symptoms of anaemia?”*"
DISCLAIMER = ("> ⚠️ **Not medical advice.** This is a small language model fine-tuned for a learning project; it makes "
              "confident mistakes. Do not use it to diagnose or treat anyone, and do not enter personal health data. "
              "**In an emergency, call your local emergency number** (112 in the EU, 911 in the US, 999 in the UK).")


def validate_input(text, max_chars=MAX_INPUT_CHARS):
    """Return (normalised question or None when empty, notice or None), cutting questions longer than max_chars."""
    question = normalize_input(text)
    if not question:
        return None, EMPTY_INPUT_REPLY
    if len(question) > max_chars:
        notice = f"✂️ Your message was {len(question):,} characters long; only the first {max_chars:,} were used."
        return question[:max_chars], notice
    return question, None


def context_limit(model, tokenizer):
    """The model's context length in tokens: the smaller of its position limit and the tokenizer's limit."""
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    return min((limit for limit in limits if isinstance(limit, int) and 0 < limit < 1_000_000), default=2048)


def prompt_tokens(tokenizer, messages):
    """Number of tokens of the messages rendered with the chat template and the assistant prompt."""
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))


def fit_history(tokenizer, question, history, budget):
    """Messages for the question with the most recent turns that fit in budget tokens; returns (messages, dropped)."""
    history = list(history or [])
    dropped = 0
    while history and prompt_tokens(tokenizer, build_messages(question, history)) > budget:
        history = history[2:]  # one turn = the user's message and the assistant's reply
        dropped += 1
    return build_messages(question, history), dropped


def history_notice(dropped):
    """Notice that the oldest turns were left out of the prompt, or None when none were."""
    if not dropped:
        return None
    return f"📜 The conversation is longer than the model can read: the oldest {dropped} turn(s) were left out."


# Streaming generation
#
# `stream_reply` is plain Python, independent of Gradio: `generate` runs in a background thread and a
# `TextIteratorStreamer` hands back the text as it is produced. It decodes with the `GenerationConfig` chosen
# on the validation split in Section 5 (its repetition settings stay on); the sliders set the length and switch
# between greedy (temperature 0) and sampling. One lock serialises every generation (chat and compare share one
# model, and the compare tab switches the adapter off), a stop event ends a generation early, and an error in
# the thread is raised again in the caller instead of leaving the stream hanging.
class EventStop(StoppingCriteria):
    """Stopping criterion that ends generation as soon as any of its threading events is set."""

    def __init__(self, *events):
        """Remember the events to watch (None entries are ignored)."""
        self.events = [event for event in events if event is not None]

    def __call__(self, input_ids, scores, **kwargs):
        """A per-row "done" flag: True for every row once an event is set."""
        done = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def sampling_kwargs(temperature, top_p):
    """generate() arguments: greedy at temperature 0, nucleus sampling otherwise."""
    if not temperature or temperature <= 0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p)}


def reply_config(generation_config, max_new_tokens, temperature, top_p):
    """The decoding settings chosen on the validation split, with the sliders' length, temperature and top-p."""
    config = copy.deepcopy(generation_config)
    sampling = sampling_kwargs(temperature, top_p)
    if not sampling["do_sample"]:
        sampling.update(temperature=None, top_p=None, top_k=None)  # greedy: no sampling knobs left to warn about
    config.update(max_new_tokens=int(max_new_tokens), **sampling)
    return config


def generate_into(model, kwargs, streamer, failures, adapter=True, lock=None):
    """Run model.generate under the lock (adapter off if adapter is False); on error record it and end the stream."""
    try:
        adapter_off = contextlib.nullcontext() if adapter else model.disable_adapter()
        with lock or contextlib.nullcontext(), adapter_off, torch.inference_mode():
            model.generate(**kwargs)
    except BaseException as error:  # noqa: BLE001 - handed to the caller, which raises it again
        failures.append(error)
        streamer.end()


def stream_reply(model, tokenizer, messages, max_new_tokens, temperature=0.0, top_p=1.0, *, adapter=True, lock=None,
                 stop_event=None, generation_config=None):
    """Generate a reply to chat messages, yielding the accumulated text as tokens arrive (with the chosen
    generation_config's repetition settings when one is given)."""
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    halt, failures = threading.Event(), []
    decoding = ({"max_new_tokens": int(max_new_tokens), **sampling_kwargs(temperature, top_p)}
                if generation_config is None else
                {"generation_config": reply_config(generation_config, max_new_tokens, temperature, top_p)})
    kwargs = {**inputs, "streamer": streamer, "use_cache": True, "pad_token_id": tokenizer.pad_token_id, **decoding,
              "stopping_criteria": StoppingCriteriaList([EventStop(halt, stop_event)])}
    thread = threading.Thread(target=generate_into, daemon=True,
                              args=(model, kwargs, streamer, failures, adapter, lock))
    thread.start()
    text = ""
    try:
        for piece in streamer:
            if piece:
                text += piece
                yield text
    finally:
        halt.set()  # a consumer that stops early (stop button, closed tab) also stops the thread
    thread.join()
    if failures:
        raise failures[0]


# One chat turn, one comparison
#
# The turn logic is separate from the widgets, so it is tested without a browser. A turn yields the chat
# as the user sees it (notices, then the growing answer) and the history the model sees (questions and
# answers only — never the notices). Errors become a message in the chat; the app keeps running. The chat
# window renders Markdown, so everything it shows passes `display_safe` first: a pasted `<img src=…>`,
# `<script>` or `![image](http://…)` is shown as text or a plain link, and nothing is fetched from outside.
def chat_message(role, content):
    """One chat message in the messages format shared by Gradio and chat templates."""
    return {"role": role, "content": content}


def display_safe(text):
    """Text the chat window renders as nothing active: HTML tags shown as text, Markdown images as plain links."""
    return text.replace("<", "&lt;").replace("![", "[")


def shown_message(role, content):
    """A chat message as displayed: display_safe, so a pasted <img>, <script> or ![image](url) fetches nothing."""
    return chat_message(role, display_safe(content))


def error_reply(error):
    """The chat message shown when generation fails."""
    return f"❌ Sorry, the answer could not be generated ({type(error).__name__}: {error}). Please try again."


def turn_notices(question, input_notice, dropped):
    """All notices for a turn, emergency notices first: red flags, input cut, off-topic, history dropped."""
    notices = [*red_flag_notices(question), input_notice, off_topic_notice(question), history_notice(dropped)]
    return [notice for notice in notices if notice]


def chat_turn(model, tokenizer, text, display, history, *, max_new_tokens, temperature=0.0, top_p=1.0,
              context_tokens=None, max_chars=MAX_INPUT_CHARS, lock=None, stop_event=None, generation_config=None):
    """Answer one chat message, yielding (chat as displayed, model history) as the answer streams."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield [*display, shown_message("assistant", input_notice)], history
        return
    budget = (context_tokens or context_limit(model, tokenizer)) - int(max_new_tokens)
    messages, dropped = fit_history(tokenizer, question, history, budget)
    shown = [*display, shown_message("user", question),
             *(shown_message("assistant", notice) for notice in turn_notices(question, input_notice, dropped))]
    yield shown, history
    answer = ""
    try:
        for answer in stream_reply(model, tokenizer, messages, max_new_tokens, temperature, top_p, lock=lock,
                                   stop_event=stop_event, generation_config=generation_config):
            yield [*shown, shown_message("assistant", answer)], [*messages[1:], chat_message("assistant", answer)]
    except Exception as error:  # noqa: BLE001 - any failure becomes a chat message; the app keeps running
        partial = [shown_message("assistant", answer)] if answer else []
        yield [*shown, *partial, shown_message("assistant", error_reply(error))], history
        return
    if not answer.strip():
        yield [*shown, shown_message("assistant", "(The model returned an empty answer.)")], history


def compare_turn(model, tokenizer, text, *, max_new_tokens, temperature=0.0, top_p=1.0, max_chars=MAX_INPUT_CHARS,
                 lock=None, generation_config=None):
    """Answer one question with the base model (adapter off), then the fine-tuned one; yield (notes, base, tuned)."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield input_notice, "", ""
        return
    notes = display_safe("\n\n".join(turn_notices(question, input_notice, 0)))
    answers = ["", ""]  # base, fine-tuned: generated one after the other, as both share the same weights
    for index, adapter in enumerate((False, True)):
        try:
            for text_so_far in stream_reply(model, tokenizer, build_messages(question), max_new_tokens, temperature,
                                            top_p, adapter=adapter, lock=lock, generation_config=generation_config):
                answers[index] = text_so_far
                yield notes, *answers
        except Exception as error:  # noqa: BLE001 - shown in that model's box; the app keeps running
            answers[index] = error_reply(error)
            yield notes, *answers


# The app
#
# `build_ui` lays out the disclaimer and the two tabs and wires them to the functions above; the queue
# runs one generation per event at a time. `launch_ui` starts the server without blocking the notebook:
# with a public share link on Colab, on `127.0.0.1` only anywhere else.
EXAMPLE_QUESTIONS = [
    "What are the symptoms of iron deficiency anaemia?",
    "What is the mechanism of action of metformin?",
    "How is hypertension diagnosed?",
    "What causes type 1 diabetes?",
]


def chat_tab(model, tokenizer, settings, guard):
    """Lay out the chat tab (inside a gr.Blocks) and wire its events."""
    import gradio as gr

    history = gr.State([])
    pending = gr.State("")
    chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="chat",
                         **supported(gr.Chatbot, type="messages", group_consecutive_messages=False))
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a medical question…", show_label=False, scale=6, elem_id="question")
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="stop")
        clear = gr.Button("Clear", scale=1, elem_id="clear")
    with gr.Row():
        sliders = generation_sliders(settings, "chat")
    gr.Examples([[question] for question in EXAMPLE_QUESTIONS], inputs=[box], label="Example questions")

    def respond(text, display, past, temperature, top_p, max_new_tokens):
        """Stream one chat turn into the chatbot."""
        guard["stop"].clear()
        yield from chat_turn(model, tokenizer, text, display or [], past or [], max_new_tokens=int(max_new_tokens),
                             temperature=temperature, top_p=top_p, context_tokens=settings.get("context_tokens"),
                             max_chars=settings.get("max_input_chars", MAX_INPUT_CHARS), lock=guard["lock"],
                             stop_event=guard["stop"], generation_config=settings.get("generation_config"))

    events = [trigger(lambda text: (text, ""), [box], [pending, box], queue=False)
              .then(respond, [pending, chatbot, history, *sliders], [chatbot, history], show_progress="hidden")
              for trigger in (box.submit, send.click)]
    stop.click(guard["stop"].set, None, None, cancels=events, queue=False)

    def reset():
        """Stop any answer in progress and forget the conversation."""
        guard["stop"].set()
        return [], [], ""

    clear.click(reset, None, [chatbot, history, box], cancels=events, queue=False)
    chatbot.clear(reset, None, [chatbot, history, box], cancels=events, queue=False)  # the chatbot's own 🗑 button


def compare_tab(model, tokenizer, settings, guard):
    """Lay out the base-vs-fine-tuned tab (inside a gr.Blocks) and wire its events."""
    import gradio as gr

    gr.Markdown("The same question, answered by the **base model** (LoRA adapter switched off) and by the "
                "**fine-tuned model**, with the same decoding settings. At temperature 0 decoding is deterministic, so "
                "any difference comes from the adapter.")
    with gr.Row():
        box = gr.Textbox(placeholder="Ask a medical question…", show_label=False, scale=6, elem_id="compare-question")
        go = gr.Button("Compare", variant="primary", scale=1, elem_id="compare")
    notes = gr.Markdown(elem_id="compare-notes")
    with gr.Row():
        base = gr.Textbox(label="Base model (adapter off)", lines=10, interactive=False, elem_id="base-answer")
        tuned = gr.Textbox(label="Fine-tuned model (LoRA)", lines=10, interactive=False, elem_id="tuned-answer")
    with gr.Row():
        sliders = generation_sliders(settings, "compare")
    gr.Examples([[question] for question in EXAMPLE_QUESTIONS], inputs=[box], label="Example questions")

    def compare(text, temperature, top_p, max_new_tokens):
        """Stream both answers into their boxes."""
        yield from compare_turn(model, tokenizer, text, max_new_tokens=int(max_new_tokens), temperature=temperature,
                                top_p=top_p, max_chars=settings.get("max_input_chars", MAX_INPUT_CHARS),
                                lock=guard["lock"], generation_config=settings.get("generation_config"))

    for trigger in (box.submit, go.click):
        trigger(compare, [box, *sliders], [notes, base, tuned], show_progress="hidden")


# Sliders, the app around the two tabs, its launch (127.0.0.1 only; a share link on Colab) and the
# record of that launch; `load_finetuned` rebuilds the model from the saved adapter after a restart.
def supported(component, **kwargs):
    """The keyword arguments this Gradio version's component accepts (Gradio 5 needs type="messages", 6 has no type)."""
    parameters = inspect.signature(component.__init__).parameters
    return {name: value for name, value in kwargs.items() if name in parameters}


def generation_sliders(settings, tab):
    """Temperature, top-p and max-new-tokens sliders (inside a gr.Blocks), with element ids prefixed by the tab;
    they start at the decoding settings chosen on the validation split."""
    import gradio as gr

    default = int(settings["max_new_tokens"])
    chosen = settings.get("generation_config")
    sampled = bool(chosen is not None and chosen.do_sample)
    temperature, top_p = (chosen.temperature, chosen.top_p) if sampled else (0.0, 0.9)
    return (gr.Slider(0.0, 1.5, value=temperature, step=0.05, label="Temperature (0 = greedy)",
                      elem_id=f"{tab}-temperature"),
            gr.Slider(0.05, 1.0, value=top_p or 0.9, step=0.05, label="Top-p", elem_id=f"{tab}-top-p"),
            gr.Slider(1, max(512, default), value=default, step=1, label="Max new tokens",
                      elem_id=f"{tab}-max-new-tokens"))


def build_ui(model, tokenizer, settings):
    """The Gradio app: disclaimer, chat tab and compare tab around one PEFT model (adapter on = fine-tuned)."""
    import gradio as gr

    model.eval()  # no LoRA dropout while answering
    guard = {"lock": threading.Lock(), "stop": threading.Event()}
    with gr.Blocks(title="Medical assistant (LoRA demo)", analytics_enabled=False) as demo:
        gr.Markdown("## 🩺 Medical question answering — fine-tuned with LoRA")
        gr.Markdown(DISCLAIMER, elem_id="disclaimer")
        if settings.get("decoding"):
            gr.Markdown(f"Decoding: **{settings['decoding']}**, chosen on the validation split (no repeated loops); "
                        "the sliders change length, temperature and top-p.", elem_id="decoding")
        with gr.Tab("Chat"):
            chat_tab(model, tokenizer, settings, guard)
        with gr.Tab("Compare base vs fine-tuned"):
            compare_tab(model, tokenizer, settings, guard)
    return demo.queue(default_concurrency_limit=1, max_size=32)


def launch_ui(demo, in_colab, port=None):
    """Start the app on 127.0.0.1 without blocking (plus a share link on Colab) and return its URL."""
    if in_colab:
        _, local_url, share_url = demo.launch(server_name="127.0.0.1", share=True, prevent_thread_lock=True,
                                              quiet=True)
        return share_url or local_url
    _, local_url, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return local_url


def write_ui_status(results_dir, url, launch_requested):
    """Record in metrics/ui_status.json that the UI was built, and whether (and why not) it was launched."""
    launched = bool(url)
    reason = None if launched else ("LAUNCH_UI is False" if not launch_requested else "the launch returned no URL")
    record = {"built": True, "launched": launched, "local": bool(url) and "127.0.0.1" in str(url), "reason": reason}
    path = Path(results_dir) / "metrics" / "ui_status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_finetuned(model_path, adapter_dir, device, dtype="float32"):
    """Load the base model and put the saved LoRA adapter on it; returns (PeftModel, tokenizer)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise FileNotFoundError(f"No saved adapter in {adapter_dir}: run Section 4 (fine-tuning) first.")
    base, tokenizer = load_model_and_tokenizer(model_path, device, dtype)
    return PeftModel.from_pretrained(base, adapter_dir), tokenizer
