"""The chat's model-free turn path against hostile and disguised input: linear-time matching, normalised text.

The fuzz test sends hostile strings of 200 and 2,000 characters (runs of one character, repeated separators, words
alternating with non-word characters, random mixes) through normalise → validate → rails → notices, with
google-re2 and with Python's `re` (the fallback when google-re2 is not installed): ten times the length must cost
well under thirty times the time (linear matching gives about ten or less; a quadratic pattern gives about a
hundred, a backtracking one far more). Absolute times belong to `bench/rails_speed.py`, not to a test on a busy
machine.
"""

import importlib.util

import pytest
from conftest import patch_everywhere
from hostile_inputs import cold_seconds, hostile_strings, turn_path

@pytest.fixture(params=["re2", "re"])
def engine(lib, request, monkeypatch):
    """The lib with google-re2 (skipped when not installed), or with Python's re as its fallback."""
    if request.param == "re2" and importlib.util.find_spec("re2") is None:
        pytest.skip("google-re2 is not installed")
    if request.param == "re":
        patch_everywhere(monkeypatch, lib, "re2", None)
    lib.compile_rx.cache_clear()
    turn_path(lib, "warm-up: compile every pattern once")
    yield request.param
    lib.compile_rx.cache_clear()


def test_hostile_strings_cost_linear_time_on_the_turn_path(lib, engine):
    worst = (0.0, "")
    for short, long in zip(hostile_strings((200,)), hostile_strings((2000,)), strict=True):
        # short and long in turns, so a burst of load slows both; the fastest of three, as load only adds time
        pairs = [(cold_seconds(lib, short), cold_seconds(lib, long)) for _ in range(3)]
        ratio = min(b for _, b in pairs) / max(min(a for a, _ in pairs), 1e-4)
        worst = max(worst, (ratio, long[:30]))
    assert worst[0] < 30, f"{engine}: 10x the length took {worst[0]:.1f}x the time for {worst[1]!r}"


def test_every_pattern_compiles_under_google_re2(lib):
    re2 = pytest.importorskip("re2")
    patterns = [*(rf"\b(?:{p})\b" for p in lib.CONCEPTS.values()), *lib.VITAL_PATTERNS.values(), lib.IDIOMS,
                *(p for p, _ in lib.NEUTRAL), lib.CLAUSE_BREAK, lib.SENTENCE_BREAK, lib.NEGATION, lib.PSEUDO_NEGATION,
                lib.POST_NEGATION, lib.MILD, lib.MILD_AFTER, lib.PAST, lib.CURRENT, lib.HYPOTHETICAL, lib.WORRY,
                lib.PSEUDO_HYPOTHETICAL, lib.EVENT_PAST, lib.ACTION, lib.AUX_QUESTION, lib.MEDICAL_TERMS,
                *(p for rule in lib.OFF_TOPIC_RULES for p in rule.patterns)]
    for pattern in patterns:
        re2.compile(pattern)  # RE2 refuses lookarounds and backreferences, the features that make matching slow


def test_the_engine_in_use_is_google_re2_when_installed(lib):
    expected = "re2" if importlib.util.find_spec("re2") else "re"
    assert lib.REGEX_ENGINE == expected


# Normalisation before the rules and the length cut: one test per step.

def test_nfkc_folds_full_width_and_styled_letters(lib):
    assert lib.normalize_input("ＣＨＥＳＴ ＰＡＩＮ") == "CHEST PAIN"
    assert lib.normalize_input("𝐜𝐡𝐞𝐬𝐭 pain") == "chest pain"
    assert lib.red_flag_notices("ｃｒｕｓｈｉｎｇ ｃｈｅｓｔ ｐａｉｎ ｒｉｇｈｔ ｎｏｗ")


def test_zero_width_and_bidi_controls_are_removed(lib):
    hidden = "cr\u200bushing ch\u200dest p\u2060ain, s\u00adweat\ufeffing \u202eright\u202c now"
    assert lib.normalize_input(hidden) == "crushing chest pain, sweating right now"
    assert lib.red_flag_notices(hidden)


def test_look_alike_letters_are_mapped_inside_latin_words(lib):
    disguised = "\u0441h\u0435st pain and I c\u0430n't bre\u0430the"  # Cyrillic с, е, а among Latin letters
    assert lib.normalize_input(disguised) == "chest pain and I can't breathe"
    assert lib.red_flag_notices(disguised)
    assert lib.normalize_input("Привет, как дела?") == "Привет, как дела?"  # a Cyrillic sentence stays Cyrillic
    assert lib.normalize_input("\u03c1ain in my \u03bfarm") == "pain in my oarm"  # Greek ρ, ο in Latin words


def test_blank_lines_and_runs_of_spaces_collapse_before_the_length_cut(lib):
    message = "Hello" + "\n" * 10_000 + "my   dad\t\tis\n\n\n\n  not breathing"
    question, notice = lib.validate_input(message, max_chars=2000)
    assert question == "Hello\n\nmy dad is\n\nnot breathing" and notice is None
    assert lib.red_flag_notices(question)


def test_a_message_of_invisible_characters_only_is_empty(lib):
    for invisible in ("\u200b\u200c\u200d\u2060\ufeff", "\u202a\u202e\u2066\u2069", "\u00ad\u034f\u3164\u2800",
                      "\ufe0f\U000e0041\n\t\u00a0 \r\n"):
        assert lib.normalize_input(invisible) == ""
        assert lib.validate_input(invisible) == (None, lib.EMPTY_INPUT_REPLY)


def test_carriage_returns_and_control_characters_are_tidied(lib):
    assert lib.normalize_input("line one\r\nline two\x07\x00") == "line one\nline two"
