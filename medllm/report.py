"""The submission checklist (verified against this run's files), REPORT.md, the model card, the demo guide."""


import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluate import LOOP_NGRAM, LOOP_TIMES


def _read_csv(path):
    """A CSV file as a DataFrame, or None when it is missing, empty or unreadable."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return None


def _read_json(path):
    """A parsed JSON file, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _finite(value):
    """True for a real number that is not NaN or infinite."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rows_ok(table, why="has no rows"):
    """(ok, reason) for a table that must have at least one row."""
    return (table is not None and len(table) > 0), why


def _experiments_ok(table):
    """(ok, reason): six measured configurations, finite losses, positive times, exactly one selected."""
    ok = (table is not None and len(table) == 6 and int(table["selected"].astype(bool).sum()) == 1
          and bool(np.isfinite(table[["train_loss", "eval_loss"]].to_numpy(dtype=float)).all())
          and bool((table["train_seconds"] > 0).all()))
    return ok, "needs six rows with finite losses, positive times and exactly one selected"


def _scores_ok(scores):
    """(ok, reason): base and fine-tuned BLEU, ROUGE-1/2/L and perplexity, all finite."""
    keys = ("bleu", "rouge1", "rouge2", "rougeL", "perplexity")
    ok = scores is not None and all(_finite(scores.get(side, {}).get(key))
                                    for side in ("base", "fine_tuned") for key in keys)
    return ok, "needs finite BLEU, ROUGE-1/2/L and perplexity for both models"


def _decoding_ok(table):
    """(ok, reason): the decoding settings compared on the validation split, exactly one chosen."""
    ok = (table is not None and len(table) > 1 and {"setting", "loop_rate", "rougeL", "chosen"} <= set(table)
          and int(table["chosen"].astype(bool).sum()) == 1)
    return ok, "needs the compared settings with loop rate, ROUGE-L and exactly one chosen"


def _knowledge_ok(record):
    """(ok, reason): at least one multiple-choice task scored with both accuracies."""
    tasks = (record or {}).get("tasks", [])
    ok = any(t.get("status") == "ok" and _finite(t.get("base_accuracy")) and _finite(t.get("fine_tuned_accuracy"))
             for t in tasks)
    return ok, "needs one scored multiple-choice task with base and fine-tuned accuracy"


# The rubric: one row per section — the criterion, and for each evidence file the check of its content.
def _png(path):
    """(ok, reason) for a plot: a PNG file of more than 1 kB."""
    return Path(path).stat().st_size > 1000, "is not a plot (under 1 kB)"


def _report_html_ok(path):
    """(ok, reason): a rendered table and at least one embedded plot."""
    text = Path(path).read_text()
    return "<table>" in text and 'src="data:image/png;base64,' in text, "has no table or no embedded plot"


def _split_ok(path):
    """(ok, reason): train, val and test splits, each non-empty."""
    table = _read_csv(path)
    ok = table is not None and set(table["split"]) == {"train", "val", "test"} and bool((table["examples"] > 0).all())
    return ok, "needs non-empty train, val and test rows"


RUBRIC = [
    ("1. Project definition & domain justification",
     "The problem, why medical Q&A, the approach and its limits are stated; the run records what it ran on.",
     {"run_config.json": lambda p: ({"profile", "model_id", "model_source", "dataset_source", "device"}
                                    <= set(_read_json(p) or {}), "misses profile, model or data source")}),
    ("2. Data pipeline",
     "Data loaded, cleaned and de-duplicated before a train/val/test split; statistics and length plots.",
     {"metrics/data_statistics.csv": lambda p: _rows_ok(_read_csv(p)),
      "metrics/split_summary.csv": _split_ok,
      "visualizations/data_lengths.png": _png}),
    ("3. LoRA experiment table",
     "Six LoRA configurations, each really trained and measured; one selected by validation loss.",
     {"experiments/experiment_tracking.csv": lambda p: _experiments_ok(_read_csv(p)),
      "visualizations/experiment_comparison.png": _png}),
    ("4. Fine-tuning with TRL's SFTTrainer",
     "The selected configuration trained with SFTTrainer; its log, hyperparameters, adapter and model card saved.",
     {"metrics/training_log.csv": lambda p: _rows_ok(_read_csv(p)),
      "metrics/run_hyperparameters.json": lambda p: ("learning_rate" in (_read_json(p) or {}),
                                                     "has no learning_rate"),
      "models/final_adapter/adapter_config.json": lambda p: ("r" in (_read_json(p) or {}), "is not a LoRA config"),
      "models/final_adapter/adapter_model.safetensors": lambda p: (Path(p).stat().st_size > 0, "is empty"),
      "models/final_adapter/README.md": lambda p: ("Not medical advice" in Path(p).read_text(),
                                                   "has no medical disclaimer"),
      "visualizations/training_curves.png": _png}),
    ("5. Evaluation",
     "Base vs fine-tuned BLEU, ROUGE-1/2/L, perplexity and degeneration with confidence intervals, side by side, "
     "decoding chosen on the validation split; a knowledge check.",
     {"metrics/evaluation_scores.json": lambda p: _scores_ok(_read_json(p)),
      "metrics/evaluation_results.csv": lambda p: _rows_ok(_read_csv(p)),
      "metrics/predictions.csv": lambda p: _rows_ok(_read_csv(p)),
      "metrics/knowledge_eval.json": lambda p: _knowledge_ok(_read_json(p)),
      "metrics/decoding_selection.csv": lambda p: _decoding_ok(_read_csv(p)),
      "models/final_adapter/generation_config.json": lambda p: ("max_new_tokens" in (_read_json(p) or {}),
                                                               "has no max_new_tokens"),
      "visualizations/evaluation_comparison.png": _png}),
    ("6. Interactive Gradio UI",
     "A chat UI on the fine-tuned model with safety rails, built and launched inline.",
     {"metrics/ui_status.json": lambda p: ((_read_json(p) or {}).get("launched") is True,
                                           (_read_json(p) or {}).get("reason") or "the UI was not launched")}),
    ("7. Submission checklist & demo",
     "Every deliverable verified against this run's files; the run written up as a report; a demo guide.",
     {"REPORT.md": lambda p: ("## 5. Evaluation" in Path(p).read_text(), "has no evaluation section"),
      "REPORT.html": _report_html_ok}),
]


# Each evidence file is checked the same way: present, not empty, modified after the run started (a file
# from an earlier run fails here), and then its own content check.
def run_started(results_dir):
    """The run's start time (a POSIX timestamp) from run_config.json, or None."""
    started = (_read_json(Path(results_dir) / "run_config.json") or {}).get("started_at")
    return dt.datetime.fromisoformat(started).timestamp() if started else None


def check_evidence(results_dir, relative, content_check, started=None):
    """One evidence file's check: {evidence, exists, fresh, content, ok, why}."""
    path = Path(results_dir) / relative
    result = {"evidence": relative, "exists": path.exists(), "fresh": False, "content": False, "why": ""}
    if not result["exists"]:
        result["why"] = "missing"
    elif path.stat().st_size == 0:
        result["why"] = "empty"
    elif started is not None and path.stat().st_mtime < started - 1:
        result["why"] = "stale: written before this run started"
    else:
        result["fresh"] = True
        try:
            result["content"], reason = content_check(path)
        except Exception as error:  # noqa: BLE001 - an unreadable file is a failed check, not a crash
            result["content"], reason = False, f"unreadable ({type(error).__name__}: {error})"
        result["why"] = "" if result["content"] else reason
    result["ok"] = result["exists"] and result["fresh"] and result["content"]
    return result


def rubric_check(results_dir, rubric=None):
    """The rubric map: every section with its criterion, its evidence checks and whether all passed."""
    started = run_started(results_dir)
    sections = []
    for section, criterion, evidence in rubric or RUBRIC:
        checks = [check_evidence(results_dir, relative, check, started) for relative, check in evidence.items()]
        sections.append({"section": section, "criterion": criterion, "ok": all(c["ok"] for c in checks),
                         "checks": checks})
    return sections


# The checklist files: the rubric map, what a submission still needs from you (the recorded demo and the
# repository link can't be checked from here), and the totals.
DELIVERABLES = [
    ("The notebook, run end to end", "medical-llm-pipeline-standalone-colab.ipynb (with outputs: File → Save)"),
    ("The run's report", "REPORT.md in the results folder"),
    ("A recorded demo of 5–10 minutes", "your screen recording — follow the demo guide below"),
    ("The repository link", "where the notebook, README and results live"),
]


def checklist_record(results_dir, sections):
    """The checklist as a JSON-ready dict: run facts, sections, totals and deliverables."""
    config = _read_json(Path(results_dir) / "run_config.json") or {}
    checks = [c for s in sections for c in s["checks"]]
    return {"run": {k: config.get(k) for k in ("profile", "model_id", "device", "dtype", "started_at")},
            "sections": sections, "checks_passed": sum(c["ok"] for c in checks), "checks_total": len(checks),
            "sections_passed": sum(s["ok"] for s in sections), "sections_total": len(sections),
            "deliverables": [{"item": item, "where": where} for item, where in DELIVERABLES]}


def checklist_markdown(record):
    """The checklist as a Markdown page (one table row per evidence file)."""
    run = record["run"]
    lines = ["# Submission checklist", "",
             f"Run: profile `{run['profile']}`, model `{run['model_id']}`, {run['dtype']} on {run['device']}, "
             f"started {run['started_at']}. Each file is checked for presence, freshness (written by this run) "
             "and content.", "",
             f"**{record['sections_passed']}/{record['sections_total']} sections, "
             f"{record['checks_passed']}/{record['checks_total']} evidence checks passed.**", "",
             "| section | criterion | | evidence | note |", "| --- | --- | --- | --- | --- |"]
    for section in record["sections"]:
        for index, check in enumerate(section["checks"]):
            head = (section["section"], section["criterion"]) if index == 0 else ("", "")
            lines.append(f"| {head[0]} | {head[1]} | {'✓' if check['ok'] else '✗'} | `{check['evidence']}` | "
                         f"{check['why']} |")
    lines += ["", "## Deliverables", "", *[f"- [ ] **{d['item']}**: {d['where']}" for d in record["deliverables"]]]
    return "\n".join(lines) + "\n"


def write_checklist(results_dir, sections):
    """Write submission_checklist.json and .md for the rubric map; return the record."""
    record = checklist_record(results_dir, sections)
    out = Path(results_dir)
    (out / "submission_checklist.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "submission_checklist.md").write_text(checklist_markdown(record) + "\n## Demo guide\n\n" + demo_guide(out))
    return record


# The model card and the report
#
# Both are generated from the files this run wrote — `run_config.json`, the metrics CSV/JSON files and
# the plots — so every number in them is one the run measured. A few small helpers turn numbers and tables
# into Markdown that reads well on GitHub.
def fmt(value, digits=4):
    """A number for a Markdown table: integers as is, floats to `digits` significant digits, blanks as '—'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.{digits}g}" if abs(value) >= 1e-4 or value == 0 else f"{float(value):.2e}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(frame, digits=4):
    """A DataFrame as a GitHub Markdown table."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def clip_text(text, limit=400):
    """Text cut to `limit` characters with an ellipsis, on one line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


# The report's sections, one function each: header and configuration, data, experiments (with a
# findings paragraph generated from the table), training and evaluation.
def experiment_findings(table):
    """A short paragraph, generated from the experiment table: who won, by how much, and what it does not show."""
    ranked = table.sort_values("eval_loss").reset_index(drop=True)
    best, runner, worst = ranked.iloc[0], ranked.iloc[min(1, len(ranked) - 1)], ranked.iloc[-1]
    steps = int(best["max_steps"])
    faster = ranked["learning_rate"].rank(ascending=False, method="min")[0] == 1
    text = (f"**{best['config']}** had the lowest validation loss, {best['eval_loss']:.4f} (perplexity "
            f"{best['eval_perplexity']:.2f}): {runner['eval_loss'] - best['eval_loss']:.4f} below the runner-up "
            f"{runner['config']} and {worst['eval_loss'] - best['eval_loss']:.4f} below the last, {worst['config']}. ")
    text += (f"Each configuration trained for only {steps} optimizer steps with one seed, so this ranks how fast a "
             "configuration learns at the start" + (", which favours the highest learning rate — as here" if faster
                                                    else "") + "; it does not show which would be best after a full "
             "epoch, and gaps smaller than the run-to-run noise of one seed (not measured here) may not hold.")
    return text


def run_hardware(config):
    """What ran this, from run_config.json's `gpu` record (written on CUDA only): "a GPU run on …" or a CPU run."""
    gpu = config.get("gpu")
    if isinstance(gpu, dict) and gpu.get("name"):
        return f"a GPU run on {gpu['name']} (compute capability {gpu.get('capability')}, {gpu.get('memory_gb')} GB)"
    return "**a CPU run, not a T4/GPU run**"


def report_header(config):
    """The report's title and the banner that says what kind of run this was."""
    device = f"{config.get('device')} ({config.get('dtype')})"
    gpu = run_hardware(config)
    return [f"# Run report — `{config.get('profile')}` profile, {config.get('model_id')}", "",
            f"> Profile `{config.get('profile')}` · model `{config.get('model_id')}` ({config.get('model_source')}) · "
            f"data `{Path(str(config.get('dataset'))).name}` ({config.get('dataset_source')}) · {device} · "
            f"started {config.get('started_at')}, finished {config.get('finished_at') or 'not recorded'}. "
            f"This is {gpu}.", "",
            "Generated by Section 7 of the notebook from the files in this folder; every number below is read "
            "from them. ⚠️ Educational project — **not medical advice**.", ""]


def report_config(config, hyper):
    """Configuration, hardware and the final run's hyperparameters."""
    versions = ", ".join(f"{k} {v}" for k, v in (config.get("versions") or {}).items())
    facts = pd.DataFrame([("profile", config.get("profile")), ("model", config.get("model_id")),
                          ("model source", config.get("model_source")), ("dataset", config.get("dataset")),
                          ("dataset source", config.get("dataset_source")), ("device", config.get("device")),
                          ("dtype", config.get("dtype")), ("seed", config.get("seed")), ("libraries", versions)],
                         columns=["setting", "value"])
    lines = ["## Configuration and hardware", "", md_table(facts), ""]
    keys = ("config", "learning_rate", "epochs", "global_step", "lora_r", "lora_alpha", "lora_dropout",
            "target_modules", "quantization", "max_length", "per_device_train_batch_size",
            "gradient_accumulation_steps", "effective_rows_per_step", "lr_scheduler_type", "warmup_steps",
            "packing_strategy", "completion_only_loss", "bf16", "fp16", "trained_tokens", "train_runtime_s")
    rows = [(k, ", ".join(hyper[k]) if isinstance(hyper.get(k), list) else hyper.get(k)) for k in keys if k in hyper]
    if rows:
        lines += ["### Final training hyperparameters (`metrics/run_hyperparameters.json`)", "",
                  md_table(pd.DataFrame(rows, columns=["hyperparameter", "value"]), 6), ""]
    return lines


def report_data(out):
    """Split sizes, the cleaning report and token-length statistics."""
    lines = ["## 2. Data", ""]
    splits = _read_csv(out / "metrics" / "split_summary.csv")
    stats = _read_csv(out / "metrics" / "data_statistics.csv")
    if splits is not None:
        lines += [md_table(splits), ""]
    if stats is not None:
        cleaning = stats[stats["kind"] == "cleaning"][["field", "characters_count"]]
        lines += ["Cleaning (rows):", "", md_table(cleaning.rename(columns={"field": "step",
                                                                           "characters_count": "rows"})), ""]
        lengths = stats[stats["kind"] == "length"]
        columns = [c for c in ("split", "field", "tokens_mean", "tokens_median", "tokens_max") if c in lengths]
        lines += ["Lengths in tokens of the model's tokenizer:", "", md_table(lengths[columns], 4), ""]
    return lines + ["![Lengths](visualizations/data_lengths.png)", ""]


# Experiments, training, evaluation and the knowledge check.
def report_experiments(out):
    """The experiment table and its generated findings."""
    table = _read_csv(out / "experiments" / "experiment_tracking.csv")
    if table is None:
        return ["## 3. LoRA experiments", "", "Not obtained: `experiments/experiment_tracking.csv` is missing.", ""]
    columns = [c for c in ("config", "learning_rate", "lora_r", "lora_alpha", "target_modules", "quantization",
                           "max_steps", "train_loss", "eval_loss", "eval_perplexity", "train_seconds",
                           "tokens_per_second", "peak_memory_mb", "trainable_params", "selected") if c in table]
    shown = table[columns].assign(target_modules=table["target_modules"].str.replace(",", ", "))
    return ["## 3. LoRA experiments", "", md_table(shown), "", experiment_findings(table), "",
            "![Experiments](visualizations/experiment_comparison.png)", ""]


def report_training(out):
    """First and last losses of the final training, and its curves."""
    log = _read_csv(out / "metrics" / "training_log.csv")
    lines = ["## 4. Fine-tuning", ""]
    if log is not None and len(log):
        train, evals = log.dropna(subset=["loss"]), log.dropna(subset=["eval_loss"])
        if len(train):
            lines.append(f"Training loss {train['loss'].iloc[0]:.4f} at step {int(train['step'].iloc[0])} → "
                         f"{train['loss'].iloc[-1]:.4f} at step {int(train['step'].iloc[-1])}.")
        if len(evals):
            lines.append(f"Validation loss {evals['eval_loss'].iloc[0]:.4f} at step {int(evals['step'].iloc[0])} → "
                         f"{evals['eval_loss'].iloc[-1]:.4f} at step {int(evals['step'].iloc[-1])} "
                         f"({len(evals)} evaluations).")
        lines.append("")
    return lines + ["![Training curves](visualizations/training_curves.png)", ""]


def report_evaluation(out):
    """The evaluation table with confidence intervals and a one-line reading of it."""
    table, scores = _read_csv(out / "metrics" / "evaluation_results.csv"), _read_json(out / "metrics" /
                                                                                        "evaluation_scores.json")
    if table is None or scores is None:
        return ["## 5. Evaluation", "", "Not obtained: the evaluation files are missing.", ""]
    decoding = chosen_decoding(out)
    how = f"decoding `{decoding}`, chosen on the validation split" if decoding else "greedy decoding"
    lines = ["## 5. Evaluation", "",
             f"{scores['n_examples']} test questions answered by both models ({how}, same prompt); "
             f"perplexity of the reference answers over {scores.get('n_perplexity_examples')} test examples. CI = "
             "95 % paired bootstrap interval of the difference (fine-tuned − base).", "", md_table(table), ""]
    rouge = scores.get("ci95", {}).get("rougeL")
    if rouge:
        verdict = ("excludes zero" if rouge["low"] > 0 or rouge["high"] < 0 else "includes zero, so this sample "
                   "cannot tell the two models apart on ROUGE-L")
        lines += [f"ROUGE-L difference {rouge['diff']:+.4f}, 95 % CI [{rouge['low']:+.4f}, {rouge['high']:+.4f}]: "
                  f"the interval {verdict}. Win/tie/loss on per-question ROUGE-L: "
                  + " / ".join(f"{scores['win_rate'][k]:.0%}" for k in ("win", "tie", "loss")) + ".", ""]
    return lines + ["![Evaluation](visualizations/evaluation_comparison.png)", ""]


def report_knowledge(out):
    """The likelihood-scored multiple-choice results, per task."""
    record = _read_json(out / "metrics" / "knowledge_eval.json")
    lines = ["### Knowledge check: multiple choice scored by likelihood", ""]
    if not record:
        return lines + ["Not obtained: `metrics/knowledge_eval.json` is missing.", ""]
    rows = []
    scored_both_ways = any("format" in task or "base_accuracy_raw" in task for task in record.get("tasks", []))
    for task in record.get("tasks", []):
        ci = task.get("ci95") or {}
        row = {"task": task.get("name"), "status": task.get("status"), "n": task.get("n"),
               "choices": (task.get("k") or 0) + 1 if task.get("k") is not None else None,
               "chance": task.get("chance"), "base": task.get("base_accuracy"),
               "fine-tuned": task.get("fine_tuned_accuracy"), "CI low": ci.get("low"),
               "CI high": ci.get("high"), "note": task.get("reason") or ""}
        if scored_both_ways:
            row = {"task": row.pop("task"), "scoring": "lm-evaluation-harness acc" if task.get("format") == "harness"
                   else "per-token mean (raw: sum)", **row, "CI width": task.get("ci95_width"),
                   "base raw": task.get("base_accuracy_raw"), "fine-tuned raw": task.get("fine_tuned_accuracy_raw")}
            row["note"] = row.pop("note")
        rows.append(row)
    lines += [md_table(pd.DataFrame(rows)), ""]
    if record.get("summary"):
        lines += [record["summary"], ""]
    return lines + ["![Knowledge](visualizations/knowledge_accuracy.png)", ""]


# What a reader of the answers meets — loops, cut-off answers — and how the decoding settings were chosen on
# the validation split (both only where the run measured them).
def chosen_decoding(out):
    """The decoding setting chosen on the validation split (metrics/decoding_selection.csv), or None."""
    table = _read_csv(out / "metrics" / "decoding_selection.csv")
    if table is None or "chosen" not in table or not table["chosen"].astype(bool).any():
        return None
    return str(table.loc[table["chosen"].astype(bool), "setting"].iloc[0])


def percent(fraction):
    """A fraction as a whole percentage with a space before the sign, e.g. 12 %."""
    return f"{100 * fraction:.0f} %"


def share(flags):
    """'k of n (p %)' for a column of true/false flags."""
    flags = flags.astype(bool)
    return f"{int(flags.sum())} of {len(flags)} ({percent(flags.mean())})"


def report_degeneration(out):
    """Loops, cut-off answers and distinct-2 of both models' test answers, and where max_new_tokens came from."""
    predictions = _read_csv(out / "metrics" / "predictions.csv")
    if predictions is None or "fine_tuned_loops" not in predictions:
        return []
    config = _read_json(out / "run_config.json") or {}
    rule = config.get("max_new_tokens_rule") or {}
    lines = ["### Degeneration: loops and cut-off answers", ""]
    text = (f"Answers that loop (a sequence of {LOOP_NGRAM} words {LOOP_TIMES} or more times): base "
            f"{share(predictions['base_loops'])}, fine-tuned {share(predictions['fine_tuned_loops'])}.")
    if "fine_tuned_hit_limit" in predictions:
        text += (f" Cut off at `max_new_tokens` = {config.get('max_new_tokens')}: base "
                 f"{share(predictions['base_hit_limit'])}, fine-tuned {share(predictions['fine_tuned_hit_limit'])}.")
    if rule:
        text += (f" That limit is the {percent(rule['quantile'])} quantile of the training answers' length in "
                 f"tokens plus the end-of-turn token ({rule['uncapped']}), capped at {rule['cap']}.")
    text += (f" Mean distinct-2 (distinct word pairs ÷ word pairs): base {predictions['base_distinct2'].mean():.3f}, "
             f"fine-tuned {predictions['fine_tuned_distinct2'].mean():.3f}.")
    return lines + [text, ""]


def report_decoding(out):
    """The decoding settings compared on the validation split, the rule, and the one it chose."""
    table = _read_csv(out / "metrics" / "decoding_selection.csv")
    if table is None or not len(table):
        return []
    config = (_read_json(out / "run_config.json") or {}).get("decoding") or {}
    columns = [c for c in ("setting", "rougeL", "rougeL_ci95_low", "rougeL_ci95_high", "diff_ci95_low",
                           "diff_ci95_high", "within_noise", "loop_rate", "hit_max_new_tokens", "distinct_2",
                           "mean_words", "seconds", "chosen") if c in table]
    chosen = table[table["chosen"].astype(bool)].iloc[0]
    greedy = table[table["setting"] == "greedy"]
    text = (f"Rule, fixed before the run: {config.get('rule', 'not recorded')}. On {int(chosen['n'])} validation "
            f"questions answered by the fine-tuned model, **{chosen['setting']}** was chosen: loop rate "
            f"{percent(chosen['loop_rate'])}" + (f" (greedy: {percent(greedy['loop_rate'].iloc[0])})" if len(greedy)
                                                 else "")
            + f", ROUGE-L {chosen['rougeL']:.3f} (95 % CI [{chosen['rougeL_ci95_low']:.3f}, "
            f"{chosen['rougeL_ci95_high']:.3f}]). The comparison took {table['seconds'].sum():.0f} s; the test split "
            "was not used. The same settings decode both models above and the Gradio UI, and are saved as "
            "`models/final_adapter/generation_config.json`.")
    if "no_repeat" in str(chosen["setting"]):
        text += (" This setting forbids exact repeats only, so the loop rate cannot see a model that drifts through "
                 "near-repeats instead (a list of ever more similar items): read the side-by-side answers.")
    return ["### Decoding, chosen on the validation split", "", md_table(table[columns]), "",
            text, ""]


# Three telling examples — where fine-tuning helped most, hurt most, and a typical one.
def example_picks(predictions):
    """Indices of up to three telling examples: where fine-tuning helped most, hurt most, and a typical one."""
    diff = (predictions["fine_tuned_rougeL"] - predictions["base_rougeL"]).reset_index(drop=True)
    picks = {"helped most": int(diff.idxmax()), "hurt most": int(diff.idxmin()),
             "typical (median difference)": int((diff - diff.median()).abs().idxmin())}
    unique = {}
    for label, index in picks.items():
        if index not in unique.values():
            unique[label] = index
    return unique


# Examples quote the data, so each quote carries the data set's attribution and licence.
DATA_ATTRIBUTION = {
    "wikidoc": "Questions and reference answers quoted from WikiDoc patient information (via the Medical Meadow "
               "collection of medAlpaca), licensed CC BY-SA: https://www.wikidoc.org",
    "medical_meadow_medical_flashcards": "Questions and reference answers quoted from Medical Meadow flashcards "
                                         "(medalpaca/medical_meadow_medical_flashcards on the Hugging Face hub).",
    "medical_flashcards_sample": "Questions and reference answers from the project's own demo sample (MIT).",
}


def data_attribution(dataset):
    """The attribution line for quoted data examples, chosen by the dataset's name (None when unknown)."""
    name = Path(str(dataset)).name.lower()
    return next((text for key, text in DATA_ATTRIBUTION.items() if key in name), None)


def report_examples(out, dataset=None):
    """Three side-by-side examples chosen by per-question ROUGE-L difference, with the data's attribution."""
    predictions = _read_csv(out / "metrics" / "predictions.csv")
    lines = ["### Side by side", ""]
    if predictions is None or not len(predictions):
        return lines + ["Not obtained: `metrics/predictions.csv` is missing.", ""]
    fields = {"question": "Question", "reference": "Reference", "base_answer": "Base",
              "fine_tuned_answer": "Fine-tuned"}
    for label, index in example_picks(predictions).items():
        row = predictions.iloc[index]
        lines += [f"**{label}** — ROUGE-L base {row['base_rougeL']:.3f}, "
                  f"fine-tuned {row['fine_tuned_rougeL']:.3f}", "",
                  *[f"- *{name}:* {clip_text(row[column])}" for column, name in fields.items() if column in row], ""]
    attribution = data_attribution(dataset)
    return lines + ([f"<sub>{attribution}</sub>", ""] if attribution else [])


def report_timings(out):
    """Seconds per section, as recorded while the notebook ran."""
    record = _read_json(out / "metrics" / "section_timings.json") or {}
    rows = [(s["section"], s["seconds"]) for s in record.get("sections", []) if s.get("seconds") is not None]
    if not rows:
        return ["## Timings", "", "Not recorded.", ""]
    frame = pd.DataFrame(rows + [("total", sum(seconds for _, seconds in rows))], columns=["section", "seconds"])
    return ["## Timings", "", md_table(frame.assign(seconds=frame["seconds"].round(1)), 6), ""]


def report_files(out):
    """Links to every plot and the main data files of the run."""
    plots = sorted(p.relative_to(out).as_posix() for p in (out / "visualizations").rglob("*.png"))
    files = [p for p in ("run_config.json", "metrics/run_hyperparameters.json", "metrics/evaluation_results.csv",
                         "metrics/evaluation_scores.json", "metrics/predictions.csv", "metrics/knowledge_eval.json",
                         "experiments/experiment_tracking.csv", "metrics/training_log.csv",
                         "metrics/decoding_selection.csv", "models/final_adapter/generation_config.json",
                         "submission_checklist.md", "models/final_adapter/README.md") if (out / p).exists()]
    return ["## Files", "", "Plots: " + ", ".join(f"[{Path(p).stem}]({p})" for p in plots), "",
            "Data: " + ", ".join(f"[`{p}`]({p})" for p in files), ""]


def build_report(results_dir):
    """The whole run as one Markdown page, generated from the files in results_dir."""
    out = Path(results_dir)
    config = _read_json(out / "run_config.json") or {}
    hyper = _read_json(out / "metrics" / "run_hyperparameters.json") or {}
    parts = [report_header(config), report_config(config, hyper), report_data(out), report_experiments(out),
             report_training(out), report_evaluation(out), report_degeneration(out), report_decoding(out),
             report_knowledge(out),
             report_examples(out, config.get("dataset")), report_timings(out), report_files(out)]
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def write_report(results_dir):
    """Write REPORT.md into results_dir and return its text."""
    text = build_report(results_dir)
    (Path(results_dir) / "REPORT.md").write_text(text)
    return text


# The model card that goes next to the adapter: base model, data, recipe, measured scores, intended
# use, limits and the disclaimer.
def model_card(results_dir, merged=False):
    """The adapter's model card (or, merged=True, the merged model's), with a Hugging Face metadata header."""
    out = Path(results_dir)
    config = _read_json(out / "run_config.json") or {}
    hyper = _read_json(out / "metrics" / "run_hyperparameters.json") or {}
    adapter = _read_json(out / "models" / "final_adapter" / "adapter_config.json") or {}
    results = _read_csv(out / "metrics" / "evaluation_results.csv")
    splits = _read_csv(out / "metrics" / "split_summary.csv")
    sizes = ", ".join(f"{r.split} {r.examples:,}" for r in splits.itertuples()) if splits is not None else "unknown"
    precision = "bf16" if hyper.get("bf16") else "fp16" if hyper.get("fp16") else "fp32"
    kind = "Merged model (base + LoRA adapter)" if merged else "LoRA adapter"
    library, tags = ("transformers", ", merged") if merged else ("peft", "")
    lines = ["---", f"base_model: {config.get('model_id')}", f"library_name: {library}",
             "pipeline_tag: text-generation", f"tags: [lora, sft, trl, medical, education{tags}]",
             "---", "", f"# {kind}: medical question answering on {config.get('model_id')}", "",
             "> ⚠️ **Not medical advice.** An educational adapter from a learning project. It makes confident "
             "mistakes; do not use it to diagnose or treat anyone.", "",
             "## Recipe", "",
             f"- **Base model:** `{config.get('model_id')}` ({config.get('model_source')}), frozen; "
             + ("the LoRA update is merged into its weights here (`merge_and_unload`), saved in the precision "
                "the run measured in: a plain model that needs no PEFT." if merged
                else "this folder holds only the LoRA weights and the tokenizer."),
             f"- **Data:** `{Path(str(config.get('dataset'))).name}` ({config.get('dataset_source')}); "
             f"splits: {sizes}.",
             f"- **LoRA:** r={adapter.get('r')}, alpha={adapter.get('lora_alpha')}, dropout="
             f"{adapter.get('lora_dropout')}, modules {', '.join(sorted(adapter.get('target_modules') or []))}; "
             f"selected by validation loss among six configurations (`{hyper.get('config')}`).",
             f"- **Training:** TRL `SFTTrainer`, {hyper.get('epochs')} epoch(s), {hyper.get('global_step')} optimizer "
             f"steps, learning rate {hyper.get('learning_rate')}, {hyper.get('lr_scheduler_type')} schedule, "
             f"packed rows of {hyper.get('max_length')} tokens, loss on the answer tokens only, {precision}, "
             f"on {config.get('device')}.", ""]
    generation = _read_json(out / "models" / "final_adapter" / "generation_config.json")
    if generation:
        lines.insert(-1, f"- **Decoding:** `{(config.get('decoding') or {}).get('chosen')}`, chosen on the validation "
                         f"split, at most {generation.get('max_new_tokens')} new tokens; `generation_config.json` in "
                         "this folder holds it (transformers loads it with `GenerationConfig.from_pretrained`).")
    if results is not None and len(results):
        lines += ["## Measured on the held-out test split", "",
                  md_table(results[["metric", "base", "fine_tuned", "difference", "ci95_low", "ci95_high", "n"]]), ""]
    lines += ["## Intended use and limits", "",
              "For learning how LoRA fine-tuning and its evaluation work. Not for clinical, diagnostic or patient-"
              "facing use. Overlap metrics (BLEU/ROUGE) reward wording close to the reference, not correctness; "
              "a small model fine-tuned briefly still gets facts wrong, and the data carry their sources' biases.",
              "", "## Load it", "", "```python", *(load_merged_lines() if merged else load_adapter_lines(config)),
              "```", ""]
    return "\n".join(lines)


def load_adapter_lines(config):
    """Python lines that load the base model with the adapter folder on it."""
    return ["from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'base = AutoModelForCausalLM.from_pretrained("{config.get("model_id")}")',
            'model = PeftModel.from_pretrained(base, "models/final_adapter")',
            'tokenizer = AutoTokenizer.from_pretrained("models/final_adapter")']


def load_merged_lines():
    """Python lines that load the merged model folder with transformers alone."""
    return ["from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            'model = AutoModelForCausalLM.from_pretrained("models/merged")',
            'tokenizer = AutoTokenizer.from_pretrained("models/merged")']


def write_model_card(results_dir):
    """Write models/final_adapter/README.md and return its path."""
    path = Path(results_dir) / "models" / "final_adapter" / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(results_dir))
    return path


# A 5–10 minute demo, walking through this run's own files
#
# The guide is generated from this run, so it names the files to open and the numbers to point at.
def demo_guide(results_dir):
    """A 5–10 minute demo script in Markdown that walks through this run's own artifacts and numbers."""
    out = Path(results_dir)
    config = _read_json(out / "run_config.json") or {}
    table = _read_csv(out / "experiments" / "experiment_tracking.csv")
    scores = _read_json(out / "metrics" / "evaluation_scores.json") or {}
    selected = table[table["selected"].astype(bool)].iloc[0]["config"] if table is not None else "—"
    rouge = scores.get("ci95", {}).get("rougeL", {})
    rouge_text = (f"ROUGE-L {rouge['diff']:+.3f} (95 % CI [{rouge['low']:+.3f}, {rouge['high']:+.3f}])" if rouge
                  else "the ROUGE-L difference")
    steps = [
        ("0:00–0:45", "Problem and disclaimer", "Section 1 of the notebook; say what the model is not for."),
        ("0:45–2:00", "Data", "`metrics/data_statistics.csv` (rows each cleaning step dropped) and "
         "`visualizations/data_lengths.png`; explain de-duplication before the split."),
        ("2:00–3:30", "Six experiments", f"`experiments/experiment_tracking.csv` and `experiment_comparison.png`; "
         f"`{selected}` won on validation loss — say what a short sweep can and cannot show."),
        ("3:30–4:30", "Fine-tuning", "`visualizations/training_curves.png` and `metrics/run_hyperparameters.json`."),
        ("4:30–6:30", "Evaluation", f"`metrics/evaluation_results.csv`: {rouge_text}; the knowledge check in "
         "`metrics/knowledge_eval.json`; then one question where fine-tuning helped and one where it hurt "
         "(`REPORT.md`, *Side by side*)."),
        ("6:30–8:30", "Live UI", "Section 6: ask an example question, use *Compare*, then type a red-flag message "
         "(\"crushing chest pain and my left arm is numb\") to show the emergency notice."),
        ("8:30–9:30", "Checklist and wrap-up", "`submission_checklist.md`: every section ✓ from this run's files; "
         "name one limit and one next step."),
    ]
    lines = [f"**Demo guide** for the `{config.get('profile')}` run of {config.get('started_at')} "
             f"({config.get('model_id')} on {config.get('device')}) — about 9 minutes:", "",
             "| time | step | show |", "| --- | --- | --- |", *[f"| {t} | {s} | {w} |" for t, s, w in steps], "",
             "Record at 1080p with the notebook zoomed so tables are legible, state the profile and hardware, and "
             "show numbers from this run only."]
    return "\n".join(lines) + "\n"
