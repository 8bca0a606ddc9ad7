"""Time the chat's model-free turn path (normalise, validate, red flags, off-topic) per message.

Usage: python bench/rails_speed.py   (run alone, under the machine's heavy-job lock; prints the load next to the times)

Messages: every benchmark part (real wordings, 9-1,100 characters) and the fuzz test's hostile strings (up to
2,000 characters). Each message is timed cold: both caches cleared first, so every figure includes the whole work.
"""

import os
import statistics
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import medllm  # noqa: E402
import medllm.rails  # noqa: E402
from hostile_inputs import cold_seconds, hostile_strings, turn_path  # noqa: E402

DATA = ROOT / "tests" / "data"
PARTS = ["red_flags_frozen.csv", "red_flags_part_c.csv", "red_flags_validation.csv", "red_flags_dev.csv",
         "red_flags.csv"]


def timings(lib, messages):
    """Milliseconds of the turn path for each message, caches cleared before each."""
    return [cold_seconds(lib, message) * 1000 for message in messages]


def main():
    """Print median, 95th percentile and maximum per message set and engine, with the load."""
    lib = medllm.namespace()
    real = [text for part in PARTS for text in pd.read_csv(DATA / part, dtype=str).iloc[:, 1 if part != "red_flags.csv"
                                                                                        else 0]]
    sets = {"benchmark messages": real, "hostile strings": hostile_strings(),
            "issue 20's message": ["CHEST" + "-" * 40 + " pain"] * 20}  # froze the old rails (40 dashes: > 60 s)
    print(f"load before: {os.getloadavg()}; regex engine {lib.REGEX_ENGINE}")
    for engine in ("re2", "re"):
        if engine == "re":
            lib.re2 = medllm.rails.re2 = None  # the rails look re2 up in their own module
        lib.compile_rx.cache_clear()
        turn_path(lib, "warm-up")
        for name, messages in sets.items():
            ms = sorted(timings(lib, messages))
            print(f"{engine:4s} {name:18s} n={len(ms):4d}  median {statistics.median(ms):5.2f} ms  "
                  f"p95 {ms[int(0.95 * (len(ms) - 1))]:5.2f} ms  max {ms[-1]:5.2f} ms")
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
