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
# # Medical question answering with LoRA — a complete, measured fine-tuning pipeline
#
# This notebook fine-tunes a small open chat model on medical question/answer flashcards with LoRA,
# and measures everything it claims: a real six-configuration experiment, TRL fine-tuning with loss on
# the answer only, and an evaluation of base vs fine-tuned model on held-out questions. Every number
# below is computed by this run; every file lands in `results/`.
#
# **How to run:** in Colab choose *Runtime → Change runtime type → T4 GPU*, then *Runtime → Run all*.
# On a machine without a GPU (or without internet) the same notebook runs a smaller profile on an
# embedded model and data sample.
#
# > ⚠️ **Not medical advice.** This is an educational project. A 1-billion-parameter model fine-tuned
# > for half an hour is not a clinician and makes confident mistakes.

# %% [markdown]
# # 1. Project definition & domain justification
#
# **Problem.** Students and patients ask short factual medical questions — *what causes X, how is Y
# treated, what does drug Z do*. General-purpose small chat models answer them fluently but vaguely,
# verbosely, and often wrongly. We ask: **how much does a small, cheap LoRA fine-tune on medical
# flashcards improve a small open model's answers**, measured on questions it never saw?
#
# **Why this domain.** Medical Q&A has a large public corpus of short, well-formed question/answer pairs
# (the [Medical Meadow](https://github.com/kbressem/medAlpaca) flashcards, written from medical-school
# study material), a clear notion of a reference answer, and a real cost of mistakes — which makes it a
# good place to practise *honest* evaluation.
#
# **Approach.** Parameter-efficient fine-tuning (LoRA) of a 1.1B chat model (TinyLlama on a T4; the 135M
# SmolLM2 on a CPU), trained with TRL's `SFTTrainer` on the model's own chat template with the loss on the
# answer only, examples packed without padding. Six LoRA configurations are really trained and compared
# before the final run; the base and fine-tuned models are then compared on a held-out test split with
# BLEU, ROUGE and answer-only perplexity, with bootstrap confidence intervals.
#
# **Ethics and limits.**
# - This is a learning exercise, **not a medical device**. Outputs can be wrong, outdated or dangerous
#   when applied to a real person; the UI says so and points to emergency services for red-flag symptoms.
# - Flashcards teach exam-style facts, not clinical judgement: no patient context, no uncertainty, no
#   follow-up questions. Overlap metrics (BLEU/ROUGE) reward wording close to the reference, not truth.
# - The data reflect their sources' biases (English, textbook populations). Don't enter personal health data.
