"""Fit the red-flag rails' small statistical model and write its weights into nb/06_ui.py.

Usage:  python tools/fit_red_flag_model.py           # fit, report cross-validated rates, rewrite the weights cell
        python tools/fit_red_flag_model.py --check   # exit 1 if the weights in nb/06_ui.py differ from a fresh fit

The model is an L1-regularised logistic regression on binary word 1-2-grams and within-word character 4-5-grams
of the rails' matching form of a message (`normalize_for_rules(..., correct=False)`), fitted with scikit-learn on
the development, validation and round-1 parts of the red-flag benchmark (never the frozen part). Only its non-zero
weights are kept; the notebook scores a message with them in plain Python, so it needs no scikit-learn at run time.
Needs `pip install scikit-learn` (requirements-dev.txt).
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = ROOT / "medllm" / "rails.py"
TRAINING = [ROOT / "tests" / "data" / name
            for name in ("red_flags_dev.csv", "red_flags.csv", "red_flags_validation.csv", "red_flags_part_c.csv")]
BEGIN, END = "# BEGIN red-flag model weights (tools/fit_red_flag_model.py)", "# END red-flag model weights"
C, FALSE_ALARM_GOAL, MIN_WEIGHT = 2.0, 0.02, 0.05


def rails_module():
    """medllm.rails: input normalisation, the rules and the model's features."""
    import medllm.rails

    return medllm.rails


def training_frame():
    """Text and label (1 = emergency) of every development and validation row."""
    frames = [pd.read_csv(path, dtype=str).rename(columns={"message": "text"})[["text", "label"]] for path in TRAINING]
    frame = pd.concat(frames, ignore_index=True)
    return frame["text"].tolist(), (frame["label"] == "emergency").astype(int).to_numpy()


def fit(texts, labels, lib):
    """(vectoriser, model) fitted on the matching form of the texts."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union

    vectoriser = make_union(
        CountVectorizer(analyzer="word", ngram_range=(1, 2), binary=True, token_pattern=lib.MODEL_TOKEN),
        CountVectorizer(analyzer="char_wb", ngram_range=(4, 5), binary=True, min_df=2))
    features = vectoriser.fit_transform([lib.normalize_for_rules(t, correct=False) for t in texts])
    model = LogisticRegression(penalty="l1", C=C, solver="liblinear", class_weight="balanced", max_iter=10000,
                               random_state=0).fit(features, labels)
    return vectoriser, model


def weights(vectoriser, model):
    """{feature: weight} of the weights of at least MIN_WEIGHT (word n-grams as 'w:...', character n-grams 'c:...')."""
    names = [("w:" if name.startswith("countvectorizer-1__") else "c:") + name.split("__", 1)[1]
             for name in vectoriser.get_feature_names_out()]
    return {name: round(float(w), 3) for name, w in zip(names, model.coef_[0]) if abs(w) >= MIN_WEIGHT}


def cross_validated_threshold(texts, labels, lib, folds=5):
    """The lowest threshold at which the model, as the notebook uses it (only where `model_allowed`), raises at most
    FALSE_ALARM_GOAL false alarms out of fold; with its out-of-fold recall and false-alarm rate."""
    from sklearn.model_selection import StratifiedKFold

    scores = np.zeros(len(texts))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=0).split(texts, labels):
        vectoriser, model = fit([texts[i] for i in train], labels[train], lib)
        fold = {"intercept": float(model.intercept_[0]), "weights": weights(vectoriser, model)}
        scores[test] = [lib.model_probability(lib.normalize_for_rules(texts[i], correct=False), fold) for i in test]
    allowed = np.array([lib.model_allowed(lib.normalize_for_rules(text, correct=False)) for text in texts])
    for threshold in np.arange(0.5, 0.99, 0.01):
        fires = (scores >= threshold) & allowed
        if fires[labels == 0].mean() <= FALSE_ALARM_GOAL:
            return round(float(threshold), 2), float(fires[labels == 1].mean()), float(fires[labels == 0].mean())
    fires = (scores >= 0.99) & allowed
    return 0.99, float(fires[labels == 1].mean()), float(fires[labels == 0].mean())


def weights_cell(model, threshold):
    """The Python source of the weights block, wrapped to 118 characters."""
    items = [f"{name!r}: {weight}" for name, weight in sorted(model["weights"].items())]
    lines, line = [], "   "
    for item in items:
        if len(line) + len(item) + 2 > 118:
            lines.append(line.rstrip())
            line = "   "
        line += f" {item},"
    lines.append(line.rstrip())
    return "\n".join([BEGIN, f"RED_FLAG_MODEL = {{\"threshold\": {threshold}, \"intercept\": {model['intercept']:.4f},",
                      " \"weights\": {", *lines, "}}", END])


def main():
    """Fit, report, and write (or with --check compare) the weights block in nb/06_ui.py."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    lib = rails_module()
    texts, labels = training_frame()
    threshold, recall, alarms = cross_validated_threshold(texts, labels, lib)
    vectoriser, fitted = fit(texts, labels, lib)
    model = {"intercept": round(float(fitted.intercept_[0]), 4), "weights": weights(vectoriser, fitted)}
    print(f"{len(texts)} training messages ({labels.sum()} emergencies); {len(model['weights'])} non-zero weights; "
          f"threshold {threshold}: out-of-fold recall {recall:.1%}, false alarms {alarms:.1%} (model alone)")
    source = SECTION.read_text()
    block = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    updated = block.sub(lambda _: weights_cell(model, threshold), source)
    if args.check:
        same = updated == source
        print("the weights in nb/06_ui.py match a fresh fit" if same else "nb/06_ui.py holds other weights")
        return 0 if same else 1
    SECTION.write_text(updated)
    print(f"wrote the weights into {SECTION.relative_to(ROOT)}; now run python tools/build_notebook.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
