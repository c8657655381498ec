"""The text rules on the corpus of tests/drift_corpus.py: how often each is right, and
what one comparison costs.

For each rule (the default ``facts()``, and ``similar(0.85)`` for comparison) it prints
the confusion matrix over the corpus's labelled pairs (a meaning change flagged is a
true positive, a paraphrase flagged a false alarm), and the median time of one
``judge(old, new)`` over all pairs, both ways.

    python bench/text_rules.py [--repeats 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from drift_corpus import CORPUS

from pytest_promptflow.drift.policy import Facts, Rule, Similar

RULES: dict[str, Rule] = {"facts()": Facts(), "similar(0.85)": Similar(0.85)}


def confusion(rule: Rule) -> dict[str, int]:
    counts = {"meaning_flagged": 0, "meaning_missed": 0, "paraphrase_flagged": 0}
    counts["paraphrase_tolerated"] = 0
    for pair in CORPUS:
        flagged = not rule.judge(pair.old, pair.new).tolerated
        if pair.kind == "meaning":
            counts["meaning_flagged" if flagged else "meaning_missed"] += 1
        else:
            counts["paraphrase_flagged" if flagged else "paraphrase_tolerated"] += 1
    return counts


def cost_us(rule: Rule, repeats: int) -> float:
    """Median microseconds of one comparison, over ``repeats`` passes of the corpus."""
    pairs = [(p.old, p.new) for p in CORPUS] + [(p.new, p.old) for p in CORPUS]
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for old, new in pairs:
            rule.judge(old, new)
        samples.append((time.perf_counter() - started) / len(pairs))
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="passes over the corpus")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()

    meaning = sum(p.kind == "meaning" for p in CORPUS)
    print(f"{len(CORPUS)} pairs: {meaning} meaning changes, {len(CORPUS) - meaning} paraphrases")
    header = f"{'rule':<14} {'flagged':>8} {'missed':>7} {'false alarms':>13} {'µs/text':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, rule in RULES.items():
        counts = confusion(rule)
        microseconds = cost_us(rule, arguments.repeats)
        results[name] = {**counts, "us_per_comparison": round(microseconds, 1)}
        print(
            f"{name:<14} {counts['meaning_flagged']:>5}/{meaning:<2} "
            f"{counts['meaning_missed']:>7} "
            f"{counts['paraphrase_flagged']:>7}/{len(CORPUS) - meaning:<5} {microseconds:>8.1f}"
        )
    missed = [
        p for p in CORPUS if p.kind == "meaning" and RULES["facts()"].judge(p.old, p.new).tolerated
    ]
    for pair in missed:
        print(f"facts() misses ({pair.fact}): {pair.old!r} -> {pair.new!r}")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
