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
# `submission_checklist.md` and `submission_checklist.json`, next to a model card for the adapter and
# `REPORT.md`, the whole run as one readable page generated from the files it wrote.

# %% [markdown]
# Write the model card, close the timings, generate `REPORT.md`, then check every section against the files.

# %% tags=["package"]
# package: report

# %% tags=["imports"]
import datetime as dt
from IPython.display import Markdown, display
from medllm.persist import close_timings, mark_section, update_run_config
from medllm.report import checklist_markdown, demo_guide, rubric_check, write_checklist, write_model_card, write_report

# %%
mark_section(OUT, "7. Checklist and report")
write_model_card(OUT)
update_run_config(OUT, finished_at=dt.datetime.now().isoformat(timespec="seconds"))
close_timings(OUT)
write_report(OUT)
CHECKLIST = write_checklist(OUT, rubric_check(OUT))
print(f"{CHECKLIST['sections_passed']}/{CHECKLIST['sections_total']} sections and {CHECKLIST['checks_passed']}/"
      f"{CHECKLIST['checks_total']} evidence checks passed; report: {OUT / 'REPORT.md'}")
Markdown(checklist_markdown(CHECKLIST))

# %%
Markdown(demo_guide(OUT))
