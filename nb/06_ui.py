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
# # 6. Interactive Gradio UI
#
# **What:** a small web app around the fine-tuned model. The *Chat* tab holds a multi-turn conversation
# with streamed answers (stop button, temperature / top-p / length sliders, example questions, clear);
# the *Compare* tab answers one question with the base model (adapter switched off) and the fine-tuned
# model side by side.
#
# **Why this way:** the prompt is built with `build_messages` and the model's own chat template — exactly
# the rendering used in training and evaluation — and the decoding settings Section 5 chose on the validation
# split and measured on the test split, so what you see here is what was measured. A medical
# demo also needs rails: a disclaimer that never leaves the screen, an emergency notice for red-flag
# messages, a note when a question is off-topic, and input checks. The rails **inform, they never
# block**: the model still answers, because hiding the answer would not make anyone safer.

# %% [markdown]
# If the kernel was restarted after training, the fine-tuned model is rebuilt from the adapter saved in
# `results/models/final_adapter` (run the set-up cells first).

# %% tags=["package"]
# package: rails ui

# %% tags=["imports"]
import sys
from medllm.persist import announce, mark_section
from medllm.ui import build_ui, launch_ui, load_finetuned, write_ui_status
from medllm.decoding import saved_generation_config

# %%
mark_section(OUT, "6. Gradio UI")
if "ft_model" not in globals():
    ADAPTER_DIR = OUT / "models" / "final_adapter"
    announce(f"No fine-tuned model in memory (kernel restarted?): loading the adapter saved in {ADAPTER_DIR}.")
    ft_model, tokenizer = load_finetuned(MODEL_PATH, ADAPTER_DIR, S["device"], S["dtype"])
if "GENERATION_CONFIG" not in globals():  # after a restart: the decoding settings saved next to the adapter
    GENERATION_CONFIG = saved_generation_config(OUT / "models" / "final_adapter")
    DECODING_CHOICE = "as saved with the adapter" if GENERATION_CONFIG is not None else None
demo = build_ui(ft_model, tokenizer, {**S, "generation_config": GENERATION_CONFIG, "decoding": DECODING_CHOICE})

# %% [markdown]
# Launch the app (skipped when `LAUNCH_UI = False`). It runs in the background: the notebook goes on, and
# the app stays up while the kernel lives. On Colab, open the public `gradio.live` link; it expires after a week.

# %%
UI_URL = launch_ui(demo, in_colab="google.colab" in sys.modules) if S["launch_ui"] else None
write_ui_status(OUT, UI_URL, S["launch_ui"])
print(f"The medical assistant is running at {UI_URL}" if UI_URL else "LAUNCH_UI is False: the app was not launched.")
