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
# # 7. Submission checklist and demo guidelines
#
# **What:** a rubric map. For each of the seven sections: the criterion it answers, the files that prove
# it, and a check of every file — **present**, **written by this run** (not left over from an earlier one)
# and **with the content it should have**. Nothing here is ticked by hand. The result is written to
# `submission_checklist.md` and `submission_checklist.json`, next to a model card for the adapter,
# `REPORT.md` (the whole run as one readable page generated from the files it wrote) and `REPORT.html`, the same
# page as one self-contained file to hand in. First, what you can take with you.

# %% tags=["package"]
# package: report export space_app

# %% tags=["imports"]
import datetime as dt
from IPython.display import Markdown, display
from medllm.persist import close_timings, mark_section, update_run_config
from medllm.report import (
    checklist_markdown, demo_guide, model_card, rubric_check, write_checklist, write_model_card, write_report,
)
from medllm.export import (
    convert_to_gguf, gguf_converter, gguf_summary, merge_adapter, push_to_hub, write_export_record,
    write_report_html, write_space,
)

# %% [markdown]
# ## Take it with you
#
# The adapter only works on top of its base model, and the app above ends with the runtime. `EXPORT` (in the
# parameters cell) asks for more: **`"merged"`** folds the adapter into the base weights (`merge_and_unload`) and
# saves a plain model that `AutoModelForCausalLM` loads alone, in the precision this run measured in (16-bit on a
# GPU, fp32 on a CPU); **`"gguf"`** converts it to one q8_0 file for llama.cpp, Ollama or LM Studio; **`"hub"`**
# uploads adapter, merged model and GGUF to the private repo `HUB_REPO` (token from the `HF_TOKEN` secret, never
# printed); **`"space"`** uploads `space/`, a ready Hugging Face Space with the same app and rails, written every run.

# %%
mark_section(OUT, "7. Checklist and report")
ADAPTER_DIR = OUT / "models" / "final_adapter"
write_model_card(OUT)
EXPORTED = {"requested": S["export"]}
if "merged" in S["export"]:
    MERGED_DIR = merge_adapter(MODEL_PATH, ADAPTER_DIR, OUT / "models" / "merged", S["dtype"],
                               card=model_card(OUT, merged=True))
    EXPORTED["merged"] = str(MERGED_DIR.relative_to(OUT))
    print(f"Merged model ({S['dtype']}, the precision this run measured in) saved in {MERGED_DIR}.")
if "gguf" in S["export"]:
    GGUF_FILE = convert_to_gguf(MERGED_DIR, OUT / "models" / "gguf" / "model-q8_0.gguf", gguf_converter())
    EXPORTED["gguf"] = gguf_summary(GGUF_FILE)
    print(f"GGUF q8_0: {GGUF_FILE} ({EXPORTED['gguf']['tensors']} tensors, read back with gguf).")

# %% [markdown]
# The Space folder: `app.py` plus the `medllm` modules it imports, the adapter and the decoding settings. Try it
# with `python results/space/app.py`; its README says how to put it online with one `hf upload` command.

# %%
HUB_MODEL = S["hub_repo"] if "hub" in S["export"] else None  # named in the Space only when this run uploads it
SPACE_DIR = write_space(OUT, MODEL_NAME, HUB_MODEL,
                        {"max_new_tokens": S["max_new_tokens"], "decoding": DECODING_CHOICE})
EXPORTED["space"] = str(SPACE_DIR.relative_to(OUT))
EXPORTED["hub"] = push_to_hub(OUT, S["hub_repo"], S["export"])
write_export_record(OUT, EXPORTED)
print(f"Space folder: {SPACE_DIR}. Hub: {EXPORTED['hub']['status']}"
      + (f" ({EXPORTED['hub']['reason']})" if EXPORTED["hub"].get("reason") else ""))

# %% [markdown]
# Close the timings, write `REPORT.md` and `REPORT.html`, then check every section against the files.

# %%
update_run_config(OUT, finished_at=dt.datetime.now().isoformat(timespec="seconds"))
close_timings(OUT)
write_report(OUT)
write_report_html(OUT)
CHECKLIST = write_checklist(OUT, rubric_check(OUT))
print(f"{CHECKLIST['sections_passed']}/{CHECKLIST['sections_total']} sections and {CHECKLIST['checks_passed']}/"
      f"{CHECKLIST['checks_total']} evidence checks passed; report: {OUT / 'REPORT.md'}, {OUT / 'REPORT.html'}")
Markdown(checklist_markdown(CHECKLIST))

# %%
Markdown(demo_guide(OUT))
