"""Red-flag rails against a labelled benchmark of emergencies and look-alike textbook questions.

tests/data/red_flags.csv: message, label (emergency/benign), category, split. `tune` rows were written before
the rules were tuned and used to tune them; `heldout` rows were written at the same time but never looked at
while tuning; `probe` rows are fresh phrasings written during tuning to test generalisation (then tuned on).
"""

import pandas as pd
import pytest

from conftest import ROOT

BENCHMARK = ROOT / "tests" / "data" / "red_flags.csv"


@pytest.fixture(scope="module")
def scored(lib):
    """The benchmark with a `flagged` column: whether red_flag_notices fired."""
    frame = pd.read_csv(BENCHMARK, dtype=str)
    frame["flagged"] = frame["message"].map(lambda message: bool(lib.red_flag_notices(message)))
    return frame


def rates(frame):
    """(recall on emergencies, false-alarm rate on benign messages, misses, false alarms)."""
    emergencies, benign = frame[frame["label"] == "emergency"], frame[frame["label"] == "benign"]
    misses, alarms = emergencies[~emergencies["flagged"]], benign[benign["flagged"]]
    return 1 - len(misses) / len(emergencies), len(alarms) / len(benign), misses, alarms


def test_benchmark_is_large_and_varied(scored):
    assert len(scored) >= 150 and set(scored["label"]) == {"emergency", "benign"}
    emergencies = scored[scored["label"] == "emergency"]
    assert emergencies["category"].nunique() >= 12
    assert (emergencies["category"].value_counts() >= 5).all()  # several wordings per category
    assert (scored["split"] == "heldout").mean() >= 0.15


def test_recall_and_false_alarms_meet_the_targets(scored):
    for name, part in [("all", scored), *scored.groupby("split")]:
        recall, false_alarms, _, _ = rates(part)
        print(f"{name:8s} n={len(part):3d}  recall {recall:.1%}  false alarms {false_alarms:.1%}")
    recall, false_alarms, misses, alarms = rates(scored)
    assert recall >= 0.95, f"missed emergencies:\n{misses[['category', 'message']].to_string()}"
    assert false_alarms <= 0.05, f"false alarms:\n{alarms['message'].to_string()}"


def test_held_out_part_meets_the_targets(scored):
    recall, false_alarms, misses, alarms = rates(scored[scored["split"] == "heldout"])
    assert recall >= 0.95 and false_alarms <= 0.05, (misses["message"].tolist(), alarms["message"].tolist())


@pytest.mark.parametrize("message,expected", [
    ("worst headache of my life", "sudden severe headache or head injury"),
    ("Chest pressure spreading to the jaw, sweating", "chest pain"),
    ("I keep thinking about ending my life", "self-harm"),
    ("my babby is floppy and has a fever", "sepsis, meningitis or a feverish baby"),
    ("12 weeks pregnant and bleeding heavily", "pregnancy"),
])
def test_issue_examples_reach_the_right_rule(lib, message, expected):
    notices = lib.red_flag_notices(message)
    assert next(rule.notice for rule in lib.RED_FLAG_RULES if rule.name == expected) in notices


@pytest.mark.parametrize("message", ["I have a cough but no chest pain or trouble breathing",
                                     "I had a heart attack five years ago, what should I eat?",
                                     "For my exam: how is status epilepticus managed?",
                                     "I cut my finger while cooking but it stopped bleeding"])
def test_negation_history_textbook_and_typo_guard_hold(lib, message):
    assert lib.red_flag_notices(message) == []


def test_typos_of_lexicon_words_are_corrected(lib):
    assert lib.normalize_for_rules("Cheast pain, cant breath, siezure, pregant") == \
        "chest pain, can't breath, seizure, pregnant"
    assert lib.correct_word("cooking") == "cooking" and lib.correct_word("hello") == "hello"
