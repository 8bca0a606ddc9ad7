"""The sweep: each of the six configurations trained and measured, and the rule that selects one."""


import json
from pathlib import Path

import pandas as pd

from .train import run_sweep_config


# All six, each saved as it finishes (a saved one with the same fingerprint is reused), then the selection.
def run_sweep(configs, model, tokenizer, train_ds, val_frame, settings, model_path, out_dir, fingerprint_of):
    """Run every configuration not already saved with the same fingerprint; return all rows in order."""
    runs = Path(out_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for config in configs:
        saved, fingerprint = runs / f"{config['config']}.json", fingerprint_of(config)
        if saved.exists() and json.loads(saved.read_text()).get("fingerprint") == fingerprint:
            print(f"✓ {config['config']}: already measured, reusing {saved}")
            rows.append(json.loads(saved.read_text()))
            continue
        row = run_sweep_config(config, model, tokenizer, train_ds, val_frame, settings, model_path, runs)
        row["fingerprint"] = fingerprint
        saved.write_text(json.dumps(row, indent=2) + "\n")
        print(f"• {config['config']}: eval_loss {row['eval_loss']:.4f}, {row['train_seconds']:.1f} s, "
              f"{row['tokens_per_second']:.0f} tok/s")
        rows.append(row)
    return rows


def select_best(rows):
    """Experiment table with exactly one `selected` row: the lowest validation loss."""
    table = pd.DataFrame(rows)
    table = table[["config"] + [column for column in table.columns if column != "config"]]
    table["selected"] = False
    table.loc[table["eval_loss"].idxmin(), "selected"] = True
    return table


# The comparison plot.
def plot_sweep(table, path):
    """Bar charts of validation loss, tokens per second and peak memory per configuration."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colors = ["tab:orange" if s else "tab:blue" for s in table["selected"]]
    panels = {"eval_loss": "Validation loss (answer tokens) ↓", "tokens_per_second": "Trained tokens per second ↑",
              "peak_memory_mb": "Memory to train it (MB): weights + peak above them"}
    for ax, (column, title) in zip(axes, panels.items()):
        left = table["resident_weights_mb"] if column == "peak_memory_mb" and "resident_weights_mb" in table else None
        if left is not None:
            ax.barh(table["config"], left, color="lightgrey", label="resident 16-bit weights")
        ax.barh(table["config"], table[column], left=left, color=colors)
        ax.set_title(title)
        ax.invert_yaxis()
    axes[0].set_xlim(table["eval_loss"].min() * 0.95, table["eval_loss"].max() * 1.02)
    fig.suptitle("LoRA experiments (orange = selected)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return fig
