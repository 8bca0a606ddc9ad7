"""Red-flag rails measured on a benchmark written in parts, by different authors at different times.

tests/data/red_flags_frozen.csv — part D, the FROZEN part (the honest figure): written by an independent helper who
    never saw the rails; copied into the repository after the rails were committed, and measured once.
tests/data/red_flags_part_c.csv — part C, frozen part of round 1 (measured once, target missed), then tuned on.
tests/data/red_flags_validation.csv — part B, the VALIDATION part: written independently, used for tuning.
tests/data/red_flags_dev.csv — part A, the DEVELOPMENT part: written by the rails' author (batches A, A2–A4).
tests/data/red_flags.csv — the LEGACY development benchmark of the earlier rules (same author as those rules).
Each part: text, label (emergency/benign), category. `python -m pytest -s tests/test_red_flags.py` prints the table;
tests/data/RED_FLAGS_BENCHMARK.md records who wrote each part, when, and what was measured.
"""

import math

import pandas as pd
import pytest

from conftest import ROOT

DATA = ROOT / "tests" / "data"
PARTS = {"frozen": "red_flags_frozen.csv", "round-1 C": "red_flags_part_c.csv",
         "validation": "red_flags_validation.csv", "dev": "red_flags_dev.csv", "legacy dev": "red_flags.csv"}
TARGET_RECALL, TARGET_FALSE_ALARMS = 0.90, 0.10


def wilson(hits, n, z=1.96):
    """The 95 % Wilson score interval of a proportion hits/n."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half / (1 + z * z / n)), min(1.0, centre + half / (1 + z * z / n))


@pytest.fixture(scope="module")
def scored(lib):
    """Every part with a `flagged` column (red_flag_notices fired) and the names of the rules that fired."""
    parts = {}
    for name, file in PARTS.items():
        frame = pd.read_csv(DATA / file, dtype=str).rename(columns={"message": "text"})
        found = frame["text"].map(lib.red_flag_findings)
        frame["rules"] = found.map(lambda findings: ", ".join(f.rule.name for f in findings))
        frame["flagged"] = found.map(bool)
        parts[name] = frame
    return parts


def rates(frame):
    """(recall, false-alarm rate, emergencies caught, emergencies, false alarms, benign messages)."""
    emergencies, benign = frame[frame["label"] == "emergency"], frame[frame["label"] == "benign"]
    caught, alarms = int(emergencies["flagged"].sum()), int(benign["flagged"].sum())
    return caught / len(emergencies), alarms / len(benign), caught, len(emergencies), alarms, len(benign)


def report(name, frame):
    """One printed line: recall and false alarms with counts and 95 % intervals."""
    recall, alarms, caught, n_e, n_alarms, n_b = rates(frame)
    r_low, r_high = wilson(caught, n_e)
    a_low, a_high = wilson(n_alarms, n_b)
    return (f"{name:11s} recall {recall:6.1%} ({caught}/{n_e}, 95% CI {r_low:.1%}–{r_high:.1%})   "
            f"false alarms {alarms:5.1%} ({n_alarms}/{n_b}, 95% CI {a_low:.1%}–{a_high:.1%})")


def test_benchmark_parts_are_large_and_labelled(scored):
    for name, frame in scored.items():
        assert set(frame["label"]) == {"emergency", "benign"}, name
        assert len(frame) >= 150, name
    frozen = scored["frozen"]
    assert frozen[frozen["label"] == "emergency"]["category"].nunique() >= 15  # many kinds of emergency


def test_frozen_part_meets_the_targets(scored):
    print()
    for name, frame in scored.items():
        print(report(name, frame))
    frozen = scored["frozen"]
    misses = frozen[(frozen["label"] == "emergency") & ~frozen["flagged"]]
    alarms = frozen[(frozen["label"] == "benign") & frozen["flagged"]]
    print("frozen-part misses by category:", misses["category"].value_counts().to_dict())
    print("frozen-part false alarms by rule:", alarms["rules"].value_counts().to_dict())
    recall, false_alarms, *_ = rates(frozen)
    assert recall >= TARGET_RECALL, misses[["category", "text"]].to_string()
    assert false_alarms <= TARGET_FALSE_ALARMS, alarms[["rules", "text"]].to_string()


@pytest.mark.parametrize("name", ["round-1 C", "validation", "dev", "legacy dev"])
def test_tuning_parts_stay_caught(scored, name):
    recall, false_alarms, *_ = rates(scored[name])  # tuned on: a regression guard, not a measure of generalisation
    frame = scored[name]
    assert recall >= 0.97, frame[(frame["label"] == "emergency") & ~frame["flagged"]]["text"].tolist()
    assert false_alarms <= 0.03, frame[(frame["label"] == "benign") & frame["flagged"]]["text"].tolist()


@pytest.mark.parametrize("message,expected", [
    ("worst headache of my life", "sudden severe headache or head injury"),
    ("Chest pressure spreading to the jaw, sweating", "chest pain"),
    ("I keep thinking about ending my life", "self-harm"),
    ("my babby is floppy and has a fever", "sepsis, meningitis or a very ill baby"),
    ("12 weeks pregnant and bleeding heavily", "pregnancy"),
    ("SpO2 84% and can't stop coughing", "breathing"),
    ("bp 165/112 at 36 weeks, headache won't go", "pregnancy"),
    ("on chemo and my temperature is 38.4", "sepsis, meningitis or a very ill baby"),
    ("Grandad hit his head, he's on apixaban", "sudden severe headache or head injury"),
    ("my 14 year old has sudden agony in one testicle", "acute abdomen, testicles or bladder"),
    ("the whole family has headaches and the carbon monoxide alarm is beeping", "heat stroke or carbon monoxide"),
])
def test_issue_examples_reach_the_right_rule(lib, message, expected):
    assert expected in [found.rule.name for found in lib.red_flag_findings(message)]


@pytest.mark.parametrize("message", ["I have a cough but no chest pain or trouble breathing",
                                     "I had a heart attack five years ago, what should I eat?",
                                     "For my exam: how is status epilepticus managed?",
                                     "I cut my finger while cooking but it stopped bleeding",
                                     "In my novel the hero is stabbed in the chest; how long would he stay conscious?",
                                     "What are the warning signs of a stroke?",
                                     "my daughter choked on a grape yesterday, it came out straight away, she's fine"])
def test_negation_history_textbook_fiction_and_resolved_events_stay_quiet(lib, message):
    assert lib.red_flag_notices(message) == []


def test_a_notice_names_the_words_it_matched(lib):
    notice = lib.red_flag_notices("My dad's face is drooping on one side")[0]
    assert notice.startswith("🚨") and "Why this notice" in notice and "face is drooping" in notice


def test_typos_of_lexicon_words_are_corrected_but_real_words_are_not(lib):
    assert lib.normalize_for_rules("Cheast pain, cant breath, siezure, pregant") == \
        "chest pain, can't breath, seizure, pregnant"
    assert [lib.correct_word(w) for w in ("cooking", "beating", "should", "soaking", "seizures")] == \
        ["cooking", "beating", "should", "soaking", "seizures"]
    assert lib.red_flag_findings("I have cheast pain and I'm sweating")  # found through the correction


def test_the_learned_model_scores_like_scikit_learn(lib):
    """The notebook's plain-Python features are exactly scikit-learn's analysers (the model was fitted with them)."""
    sklearn = pytest.importorskip("sklearn.feature_extraction.text")
    message = lib.normalize_for_rules("My son's lips swell after peanuts, he's wheezy!! sp02 88 a", correct=False)
    words = sklearn.CountVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=lib.MODEL_TOKEN)
    chars = sklearn.CountVectorizer(analyzer="char_wb", ngram_range=(4, 5))
    expected = {f"w:{f}" for f in words.build_analyzer()(message)} | {f"c:{f}" for f in chars.build_analyzer()(message)}
    assert lib.model_features(message) == expected
    assert lib.RED_FLAG_MODEL["weights"] and 0 < lib.RED_FLAG_MODEL["threshold"] < 1
