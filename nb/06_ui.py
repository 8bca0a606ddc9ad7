# %% [markdown]
# # 6. Interactive Gradio UI
#
# **What:** a small web app around the fine-tuned model. The *Chat* tab holds a multi-turn conversation
# with streamed answers (stop button, temperature / top-p / length sliders, example questions, clear);
# the *Compare* tab answers one question with the base model (adapter switched off) and the fine-tuned
# model side by side.
#
# **Why this way:** the prompt is built with `build_messages` and the model's own chat template — exactly
# the rendering used in training and evaluation — so what you see here is what was measured. A medical
# demo also needs rails: a disclaimer that never leaves the screen, an emergency notice for red-flag
# messages, a note when a question is off-topic, and input checks. The rails **inform, they never
# block**: the model still answers, because hiding the answer would not make anyone safer.

# %% [markdown]
# ### Safety rails: two small rule tables
#
# Each rule is one row: a name, regular expressions, and the notice shown in the chat.
#
# - **Red flags** (chest pain, breathing, stroke signs, self-harm, overdose/poisoning, anaphylaxis,
#   severe bleeding, seizure/unconsciousness). A rule fires only when a symptom pattern matches **and**
#   the message sounds personal and current — a first-person or third-person cue (*I, my, me, he, she,
#   someone, right now, "help!"*). So *"I have crushing chest pain"* or *"my dad's face is drooping"* gets the
#   emergency notice **before** any model text, while the textbook question *"what is the mechanism of
#   chest pain in angina?"* does not. The cue is deliberately loose: a false alarm costs one sentence, a
#   miss could cost much more (*"can I take aspirin for my chest pain?"* is flagged, and should be).
# - **Off-topic** (programming, sport, cooking, finance, entertainment): a note that the model was only
#   trained on medical flashcards, shown when a topic keyword matches and no medical word does
#   (*"is football good for my heart?"* is on-topic).

# %% tags=["lib"]
import contextlib
import inspect
import threading
from typing import NamedTuple

from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer


class Rule(NamedTuple):
    """One row of a rule table: a name, regular expressions (any may match), and the notice to show."""

    name: str
    patterns: tuple
    notice: str


EMERGENCY = "**Call your local emergency number now** (112 EU, 911 US, 999 UK)"
RED_FLAG_RULES = [
    Rule("chest pain",
         (r"\bchest\s+(pain|pains|pressure|tightness|discomfort)", r"\bchest\s+(is\s+|feels\s+)?(tight|hurts?)",
          r"\bpain\s+in\s+(my|his|her|the)\s+chest", r"\bheart\s+attack"),
         "🚨 **Chest pain can be a heart attack**, especially with breathlessness, sweating or pain spreading to the "
         f"arm or jaw. {EMERGENCY}; do not drive yourself."),
    Rule("breathing",
         (r"\b(can'?t|cannot|unable\s+to|struggling\s+to|hard\s+to)\s+breathe", r"\bchoking\b",
          r"\b(not|isn'?t|stopped)\s+breathing", r"\bgasping\s+for\s+(air|breath)", r"\blips?\s+(are\s+)?blue"),
         f"🚨 **Severe difficulty breathing is an emergency.** {EMERGENCY}."),
    Rule("stroke signs",
         (r"\b(face|mouth|smile)\s+(is\s+)?(droop\w*|lopsided)", r"\bdroop\w*\s+(face|mouth|smile|on\s+one\s+side)",
          r"\bslurr\w*\s+(speech|words|talking)", r"\b(speech|words)\s+(is\s+|are\s+)?slurr\w*",
          r"\b(one|left|right)[\s-]+sided\s+(weakness|numbness|paralysis)",
          r"\b(weak|weakness|numb|numbness|paralys\w*)\s+(on|in)\s+(one|the\s+left|the\s+right|my\s+left|my\s+right)\s+side",
          r"\b(can'?t|cannot)\s+(move|lift|feel)\s+(my|his|her)\s+(arm|leg|face|hand)", r"\bhaving\s+a\s+stroke"),
         f"🚨 **Face drooping, arm weakness or slurred speech can be a stroke.** {EMERGENCY} and note the time "
         "the symptoms started."),
    Rule("self-harm",
         (r"\b(kill|hurt|harm|cut)\w*\s+(myself|himself|herself|themselves)", r"\bsuicid\w*",
          r"\bend\s+(my|his|her)\s+(own\s+)?life", r"\b(want|wants|wanting|going)\s+to\s+die", r"\bself[\s-]?harm\w*",
          r"\bno\s+reason\s+to\s+live", r"\bbetter\s+off\s+dead"),
         "🚨 **You are not alone.** If you might act on thoughts of suicide or self-harm, call your local emergency "
         "number now, or talk to a crisis line today (988 in the US, 116 123 in the UK and Ireland)."),
    Rule("overdose or poisoning",
         (r"\boverdos\w*", r"\bpoison(ed|ing)\b",
          r"\b(took|taken|swallowed|ate|drank|drunk)\s+(\w+\s+){0,4}?(too\s+many|too\s+much|a\s+whole|the\s+whole)",
          r"\b(swallowed|drank|ate)\s+(\w+\s+){0,3}?(bleach|poison|antifreeze|detergent|pods?|batter(y|ies)|pesticide)"),
         f"🚨 **Possible overdose or poisoning.** {EMERGENCY} or a poison control centre, even if the person seems "
         "well; keep the package."),
    Rule("anaphylaxis",
         (r"\banaphyla\w*", r"\b(throat|tongue|lips?)\s+(is\s+|are\s+|feels\s+)?(swelling|swollen|closing|tight)",
          r"\bepi-?pen", r"\b(severe|bad)\s+allergic\s+reaction"),
         "🚨 **Throat or tongue swelling after a sting, food or medicine can be anaphylaxis.** Use an adrenaline "
         f"auto-injector if there is one; {EMERGENCY}."),
    Rule("severe bleeding",
         (r"\bbleeding\s+(heavily|badly|profusely|a\s+lot|non[\s-]?stop|(that\s+)?(won'?t|will\s+not|doesn'?t)\s+stop)",
          r"\b(severe|uncontrolled|massive|heavy|spurting)\s+bleeding", r"\bblood\s+(is\s+)?(spurting|pouring)",
          r"\b(won'?t|can'?t|cannot)\s+stop\s+(the\s+)?bleeding", r"\b(vomiting|coughing|throwing)\s+(up\s+)?blood"),
         f"🚨 **Severe bleeding is an emergency.** Press firmly on the wound and {EMERGENCY}."),
    Rule("seizure or unconscious",
         (r"\b(unconscious|unresponsive|collapsed)\b", r"\b(won'?t|will\s+not|can'?t|cannot)\s+wake\b",
          r"\bnot\s+waking\s+up", r"\b(having|had|has)\s+an?\s+(seizure|fit|convulsion)", r"\b(seizing|convulsing)\b"),
         f"🚨 **A seizure, or someone who cannot be woken, needs help now.** {EMERGENCY}."),
]
# A red flag counts only when the message is about a real person now, not a textbook question.
PERSONAL_CUES = (r"(?<!type )(?<!class )(?<!grade )(?<!stage )(?<!phase )\bi\b(?!\.e)",
                 r"\b(i'm|im|i've|ive|i'd|me|my|myself|our|we're)\b",
                 r"\b(he|she|he's|she's|him|her|someone|somebody)\b", r"\b(right\s+now|just\s+now|currently)\b",
                 r"^\W*help\b|\bhelp\s*[!,.]")  # "Help, can't breathe" (but not "how does aspirin help ...")

OFF_TOPIC_NOTICE = ("ℹ️ This looks like a question about **{}**, not medicine. The model was fine-tuned on medical "
                    "flashcards only, so expect an unreliable answer.")
OFF_TOPIC_RULES = [
    Rule("programming",
         (r"\b(python|javascript|typescript|java|c\+\+|sql|html|css|github|docker|linux|regex)\b",
          r"\b(source\s+code|stack\s+trace|compile|debug)\b", r"\bwrite\s+(a|me\s+a)\s+(program|script|function)"),
         OFF_TOPIC_NOTICE.format("programming")),
    Rule("sport", (r"\b(football|soccer|basketball|baseball|cricket|tennis|nba|nfl|premier\s+league|world\s+cup)\b",),
         OFF_TOPIC_NOTICE.format("sport")),
    Rule("cooking", (r"\b(recipes?|bake|baking|cake|pasta)\b", r"\bhow\s+(do\s+i|to)\s+cook\b"),
         OFF_TOPIC_NOTICE.format("cooking")),
    Rule("finance", (r"\b(stocks?|crypto\w*|bitcoin|forex|mortgage|invest\w*)\b",),
         OFF_TOPIC_NOTICE.format("finance")),
    Rule("entertainment", (r"\b(movies?|film|netflix|lyrics|video\s+games?)\b",),
         OFF_TOPIC_NOTICE.format("entertainment")),
]
# Any of these words makes a message medical, whatever else it mentions ("is football good for my heart?").
MEDICAL_TERMS = (r"\b(health\w*|medic\w*|disease\w*|symptom\w*|pain\w*|doctor|nurse|patient\w*|drugs?|dose\w*|"
                 r"treat\w*|therap\w*|diagnos\w*|infect\w*|injur\w*|allerg\w*|diet\w*|nutrition|calorie\w*|vitamin\w*|"
                 r"blood|heart|lungs?|liver|kidney\w*|brain|cancer|diabet\w*|pregnan\w*|hospital|surgery|vaccin\w*|"
                 r"virus\w*|bacteri\w*|bites?|bitten|stings?|concussion|fracture\w*|muscle\w*|bones?|skin|sleep|"
                 r"anxiety|depress\w*|exercise)\b")


def normalize_for_rules(text):
    """Lower-case the text and straighten curly apostrophes so one regex covers "can't", "can’t" and "cant"."""
    return text.lower().replace("\u2019", "'")


def rule_matches(text, rule):
    """True when any of the rule's patterns occurs in the (normalised) text."""
    return any(re.search(pattern, text) for pattern in rule.patterns)


def sounds_personal(text):
    """True when the (normalised) text speaks about a real person now (I, my, she, someone, right now ...)."""
    return any(re.search(pattern, text) for pattern in PERSONAL_CUES)


def red_flag_notices(message):
    """Emergency notices for the red-flag rules a personal message matches, in table order."""
    text = normalize_for_rules(message)
    if not sounds_personal(text):
        return []
    return [rule.notice for rule in RED_FLAG_RULES if rule_matches(text, rule)]


def off_topic_notice(message):
    """The notice of the first off-topic rule that matches a message without any medical word, else None."""
    text = normalize_for_rules(message)
    if re.search(MEDICAL_TERMS, text) or any(rule_matches(text, rule) for rule in RED_FLAG_RULES):
        return None
    return next((rule.notice for rule in OFF_TOPIC_RULES if rule_matches(text, rule)), None)


# %% [markdown]
# ### Input checks and the prompt budget
#
# An empty message gets a friendly prompt and no model call; a message over `MAX_INPUT_CHARS` is cut with
# a notice. The conversation is rendered with `build_messages`; when the prompt would not leave room for
# the answer (context length minus `max_new_tokens`), the oldest turns are dropped — and the chat says so.

# %% tags=["lib"]
MAX_INPUT_CHARS = 2000
EMPTY_INPUT_REPLY = "👋 Please type a medical question first — for example *“What are the symptoms of anaemia?”*"
DISCLAIMER = ("> ⚠️ **Not medical advice.** This is a small language model fine-tuned for a learning project; it makes "
              "confident mistakes. Do not use it to diagnose or treat anyone, and do not enter personal health data. "
              "**In an emergency, call your local emergency number** (112 in the EU, 911 in the US, 999 in the UK).")


def validate_input(text, max_chars=MAX_INPUT_CHARS):
    """Return (question or None when empty, notice or None), cutting questions longer than max_chars."""
    question = (text or "").strip()
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


# %% [markdown]
# ### Streaming generation
#
# `stream_reply` is plain Python, independent of Gradio: `generate` runs in a background thread and a
# `TextIteratorStreamer` hands back the text as it is produced. Greedy decoding at temperature 0,
# sampling otherwise. One lock serialises every generation (chat and compare share one model, and the
# compare tab switches the adapter off), a stop event ends a generation early, and an error in the thread
# is raised again in the caller instead of leaving the stream hanging.

# %% tags=["lib"]
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
                 stop_event=None):
    """Generate a reply to chat messages, yielding the accumulated text as tokens arrive."""
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    halt, failures = threading.Event(), []
    kwargs = {**inputs, "streamer": streamer, "max_new_tokens": int(max_new_tokens), "use_cache": True,
              "pad_token_id": tokenizer.pad_token_id, **sampling_kwargs(temperature, top_p),
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


# %% [markdown]
# ### One chat turn, one comparison
#
# The turn logic is separate from the widgets, so it is tested without a browser. A turn yields the chat
# as the user sees it (notices, then the growing answer) and the history the model sees (questions and
# answers only — never the notices). Errors become a message in the chat; the app keeps running.

# %% tags=["lib"]
def chat_message(role, content):
    """One chat message in the messages format shared by Gradio and chat templates."""
    return {"role": role, "content": content}


def error_reply(error):
    """The chat message shown when generation fails."""
    return f"❌ Sorry, the answer could not be generated ({type(error).__name__}: {error}). Please try again."


def turn_notices(question, input_notice, dropped):
    """All notices for a turn, emergency notices first: red flags, input cut, off-topic, history dropped."""
    notices = [*red_flag_notices(question), input_notice, off_topic_notice(question), history_notice(dropped)]
    return [notice for notice in notices if notice]


def chat_turn(model, tokenizer, text, display, history, *, max_new_tokens, temperature=0.0, top_p=1.0,
              context_tokens=None, max_chars=MAX_INPUT_CHARS, lock=None, stop_event=None):
    """Answer one chat message, yielding (chat as displayed, model history) as the answer streams."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield [*display, chat_message("assistant", input_notice)], history
        return
    budget = (context_tokens or context_limit(model, tokenizer)) - int(max_new_tokens)
    messages, dropped = fit_history(tokenizer, question, history, budget)
    shown = [*display, chat_message("user", question),
             *(chat_message("assistant", notice) for notice in turn_notices(question, input_notice, dropped))]
    yield shown, history
    answer = ""
    try:
        for answer in stream_reply(model, tokenizer, messages, max_new_tokens, temperature, top_p, lock=lock,
                                   stop_event=stop_event):
            yield [*shown, chat_message("assistant", answer)], [*messages[1:], chat_message("assistant", answer)]
    except Exception as error:  # noqa: BLE001 - any failure becomes a chat message; the app keeps running
        partial = [chat_message("assistant", answer)] if answer else []
        yield [*shown, *partial, chat_message("assistant", error_reply(error))], history
        return
    if not answer.strip():
        yield [*shown, chat_message("assistant", "(The model returned an empty answer.)")], history


def compare_turn(model, tokenizer, text, *, max_new_tokens, temperature=0.0, top_p=1.0, max_chars=MAX_INPUT_CHARS,
                 lock=None):
    """Answer one question with the base model (adapter off), then the fine-tuned one; yield (notes, base, tuned)."""
    question, input_notice = validate_input(text, max_chars)
    if question is None:
        yield input_notice, "", ""
        return
    notes = "\n\n".join(turn_notices(question, input_notice, 0))
    answers = ["", ""]  # base, fine-tuned: generated one after the other, as both share the same weights
    for index, adapter in enumerate((False, True)):
        try:
            for text_so_far in stream_reply(model, tokenizer, build_messages(question), max_new_tokens, temperature,
                                            top_p, adapter=adapter, lock=lock):
                answers[index] = text_so_far
                yield notes, *answers
        except Exception as error:  # noqa: BLE001 - shown in that model's box; the app keeps running
            answers[index] = error_reply(error)
            yield notes, *answers


# %% [markdown]
# ### The app
#
# `build_ui` lays out the disclaimer and the two tabs and wires them to the functions above; the queue
# runs one generation per event at a time. `launch_ui` starts the server without blocking the notebook:
# with a public share link on Colab, on `127.0.0.1` only anywhere else.

# %% tags=["lib"]
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
                             stop_event=guard["stop"])

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
                "**fine-tuned model**. At temperature 0 decoding is greedy, so any difference comes from the adapter.")
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
                                lock=guard["lock"])

    for trigger in (box.submit, go.click):
        trigger(compare, [box, *sliders], [notes, base, tuned], show_progress="hidden")


def supported(component, **kwargs):
    """The keyword arguments this Gradio version's component accepts (Gradio 5 needs type="messages", 6 has no type)."""
    parameters = inspect.signature(component.__init__).parameters
    return {name: value for name, value in kwargs.items() if name in parameters}


def generation_sliders(settings, tab):
    """Temperature, top-p and max-new-tokens sliders (inside a gr.Blocks), with element ids prefixed by the tab."""
    import gradio as gr

    default = int(settings["max_new_tokens"])
    return (gr.Slider(0.0, 1.5, value=0.0, step=0.05, label="Temperature (0 = greedy)", elem_id=f"{tab}-temperature"),
            gr.Slider(0.05, 1.0, value=0.9, step=0.05, label="Top-p", elem_id=f"{tab}-top-p"),
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
        with gr.Tab("Chat"):
            chat_tab(model, tokenizer, settings, guard)
        with gr.Tab("Compare base vs fine-tuned"):
            compare_tab(model, tokenizer, settings, guard)
    return demo.queue(default_concurrency_limit=1, max_size=32)


def launch_ui(demo, in_colab, port=None):
    """Start the app without blocking (share link on Colab, 127.0.0.1 elsewhere) and return its URL."""
    if in_colab:
        _, local_url, share_url = demo.launch(share=True, prevent_thread_lock=True, quiet=True)
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


# %% [markdown]
# If the kernel was restarted after training, the fine-tuned model is rebuilt from the adapter saved in
# `results/models/final_adapter` (run the set-up cells first).

# %%
mark_section(OUT, "6. Gradio UI")
if "ft_model" not in globals():
    ADAPTER_DIR = OUT / "models" / "final_adapter"
    announce(f"No fine-tuned model in memory (kernel restarted?): loading the adapter saved in {ADAPTER_DIR}.")
    ft_model, tokenizer = load_finetuned(MODEL_PATH, ADAPTER_DIR, S["device"], S["dtype"])
demo = build_ui(ft_model, tokenizer, S)

# %% [markdown]
# Launch the app (skipped when `LAUNCH_UI = False`). It runs in the background: the notebook goes on, and
# the app stays up while the kernel lives. On Colab, open the public `gradio.live` link; it expires after a week.

# %%
UI_URL = launch_ui(demo, in_colab="google.colab" in sys.modules) if S["launch_ui"] else None
write_ui_status(OUT, UI_URL, S["launch_ui"])
print(f"The medical assistant is running at {UI_URL}" if UI_URL else "LAUNCH_UI is False: the app was not launched.")
