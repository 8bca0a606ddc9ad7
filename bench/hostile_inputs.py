"""Messages built to make backtracking regular expressions slow, and the chat's model-free turn path they go through.

Shared by the fuzz test (tests/test_rails_input.py) and the speed benchmark (bench/rails_speed.py).
"""

import itertools
import random
import time

SEPARATORS = ["-", " ", ".", ",", "!", "?", "'", "/", "\n", "\t", "_", "*", "=", "|", "\u200b", "\u00a0", "°", "%",
              "&", "(", "+"]
WORDS = ["chest", "pain", "CHEST", "blood", "bleeding", "i", "my", "not", "no", "if", "and", "stopped", "a", "38.5",
         "120/80", "sats", "sugar", "temp", "baby", "weeks", "pregnant", "can't", "breathe", "aaaa", "w", "9"]


def hostile_strings(sizes=(200, 2000)):
    """Strings built to make backtracking regular expressions slow, the same families at each size in `sizes`."""
    out = []
    for n in sizes:
        for sep in SEPARATORS:
            out += [sep * n, ("chest" + sep * (n - 10) + "pain")[:n], ("CHEST" + sep * n)[:n]]
        out += [ch * n for ch in "a1!'e\u0301Ａ"]
        out += [((word + sep) * n)[:n] for word, sep in itertools.product(WORDS[:12], "- '.,/")]
        rng = random.Random(n)
        out += [" ".join(rng.choice(WORDS) for _ in range(n))[:n],
                "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(n))[:n],
                "".join(rng.choice("ab -'.,\n") for _ in range(n))]
    return out


def turn_path(lib, message):
    """The model-free part of a chat turn: normalise and validate, then the red-flag and off-topic notices."""
    question, notice = lib.validate_input(message)
    return lib.turn_notices(question, notice, 0) if question else [notice]


def cold_seconds(lib, message):
    """Seconds of one run of the turn path with both caches cleared first, so it includes the whole work."""
    lib.red_flag_findings.cache_clear()
    lib.concept_hits.cache_clear()
    start = time.perf_counter()
    turn_path(lib, message)
    return time.perf_counter() - start
