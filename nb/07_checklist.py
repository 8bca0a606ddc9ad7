# %% [markdown]
# # 7. Submission checklist and demo guidelines
#
# **What:** every deliverable is checked against the files *this run* wrote — present, parseable and
# complete — and the result is written to `submission_checklist.md` with ✓ or ✗ and the path that proves it.
# Nothing here is ticked by hand.

# %% tags=["lib"]
def _csv_rows(path):
    """Rows of a CSV file, or None when it is missing or unreadable."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _json(path):
    """A parsed JSON file, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _experiments_ok(table):
    """Six measured configurations, finite losses, positive times, exactly one selected."""
    return (table is not None and len(table) == 6 and int(table["selected"].astype(bool).sum()) == 1
            and bool(np.isfinite(table[["train_loss", "eval_loss"]].to_numpy(dtype=float)).all())
            and bool((table["train_seconds"] > 0).all()))


def _scores_ok(scores):
    """Base and fine-tuned scores present with every metric a finite number."""
    keys = ("bleu", "rouge1", "rouge2", "rougeL", "perplexity")
    return scores is not None and all(
        isinstance(scores.get(m, {}).get(k), (int, float)) and math.isfinite(scores[m][k])
        for m in ("base", "fine_tuned") for k in keys)


def checklist_items(results_dir):
    """(item, ok, evidence path) for each deliverable, judged from the files in results_dir."""
    out = Path(results_dir)
    config = _json(out / "run_config.json") or {}
    items = [
        ("Run configuration recorded", {"profile", "model_id", "model_source", "dataset_source"} <= set(config),
         "run_config.json"),
        ("Data statistics and cleaning report", _csv_rows(out / "metrics" / "data_statistics.csv") is not None,
         "metrics/data_statistics.csv"),
        ("Train/val/test split", (lambda t: t is not None and set(t["split"]) == {"train", "val", "test"})(
            _csv_rows(out / "metrics" / "split_summary.csv")), "metrics/split_summary.csv"),
        ("Six LoRA configurations trained, one selected", _experiments_ok(
            _csv_rows(out / "experiments" / "experiment_tracking.csv")), "experiments/experiment_tracking.csv"),
        ("Fine-tuning log", (lambda t: t is not None and len(t) > 0)(_csv_rows(out / "metrics" / "training_log.csv")),
         "metrics/training_log.csv"),
        ("LoRA adapter saved", all((out / "models" / "final_adapter" / f).exists()
                                   for f in ("adapter_config.json", "adapter_model.safetensors")),
         "models/final_adapter/"),
        ("Evaluation: base vs fine-tuned scores", _scores_ok(_json(out / "metrics" / "evaluation_scores.json")),
         "metrics/evaluation_scores.json"),
        ("Side-by-side predictions", (lambda t: t is not None and len(t) > 0)(
            _csv_rows(out / "metrics" / "predictions.csv")), "metrics/predictions.csv"),
    ]
    for name in ("data_lengths", "training_curves", "experiment_comparison", "evaluation_comparison"):
        path = out / "visualizations" / f"{name}.png"
        items.append((f"Plot: {name.replace('_', ' ')}", path.exists() and path.stat().st_size > 0,
                      f"visualizations/{name}.png"))
    return items


def write_checklist(results_dir, items, extra=()):
    """Write submission_checklist.md from checked items (plus extra (item, ok, evidence) rows); return its text."""
    lines = ["# Submission checklist", "", "Checked against the files this run wrote.", "",
             "| | item | evidence |", "| --- | --- | --- |"]
    lines += [f"| {'✓' if ok else '✗'} | {item} | `{evidence}` |" for item, ok, evidence in [*items, *extra]]
    text = "\n".join(lines) + "\n"
    (Path(results_dir) / "submission_checklist.md").write_text(text)
    return text


# %%
ui_evidence = [("Gradio UI built" + (" and launched" if S["launch_ui"] else " (launch off)"),
                "demo" in globals(), globals().get("UI_URL") or "section 6")]
update_run_config(OUT, finished_at=dt.datetime.now().isoformat(timespec="seconds"))
items = checklist_items(OUT)
print(write_checklist(OUT, items, ui_evidence))
print(f"{sum(ok for _, ok, _ in items)}/{len(items)} artifact checks passed")

# %% [markdown]
# ### Recording a demo (2–3 minutes)
#
# 1. **Problem (20 s):** the question — does a small LoRA fine-tune make a small model answer medical
#    flashcard questions better? — and the disclaimer.
# 2. **Data (20 s):** the cleaning report and split table; point out de-duplication before splitting.
# 3. **Experiments (30 s):** the six-row table and the comparison plot; say which configuration won and why
#    that is a validation-loss decision, not a guess.
# 4. **Training (20 s):** the curves — training and validation loss falling together.
# 5. **Evaluation (40 s):** base vs fine-tuned scores with the confidence intervals, then two rows of the
#    side-by-side table: one where fine-tuning helped, one where it did not.
# 6. **UI (30 s):** ask a flashcard-style question, use *Compare* to show base vs fine-tuned, and type a
#    red-flag message to show the emergency notice.
#
# Record the screen at 1080p, keep the notebook zoomed so tables are legible, and state the profile and
# hardware (they are in `run_config.json`). Show numbers from your own run only.
