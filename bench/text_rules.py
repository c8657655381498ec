"""The text rules on the corpora of tests/drift_corpus.py: how often each is right, and
what one comparison costs.

For each rule (the default ``facts()``, and ``similar(0.85)`` for comparison) it prints
the confusion matrix over the corpus's labelled pairs (a meaning change flagged is a
true positive, a paraphrase flagged a false alarm), then over the grounded corpus, whose
pairs are judged as the drift gate judges them, with the inputs of the call that wrote
the new text (``facts()`` grounds its facts in them; ``similar`` has no use for them).
The cost is the median time of one ``judge(old, new)`` over all pairs of the corpus,
both ways, and of one grounded judgement (a call's ``Grounds`` made for each).

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

from typing import Any

from drift_corpus import CORPUS, GROUNDED_CORPUS

from pytest_promptflow.drift.policy import Facts, Judgement, Rule, Similar

RULES: dict[str, Rule] = {"facts()": Facts(), "similar(0.85)": Similar(0.85)}
Labelled = tuple[str, str, str, "dict[str, Any] | None"]
"""kind (``meaning`` or ``paraphrase``), old, new, and the inputs of the call, if any."""


def judge(rule: Rule, old: str, new: str, inputs: dict[str, Any] | None) -> Judgement:
    """As the drift gate judges: a ``facts()`` field with the call's inputs as grounds."""
    if inputs is not None and isinstance(rule, Facts):
        return rule.judge(old, new, grounds=rule.grounds_of(inputs))
    return rule.judge(old, new)


def confusion(rule: Rule, pairs: list[Labelled]) -> dict[str, int]:
    counts = {"meaning_flagged": 0, "meaning_missed": 0, "paraphrase_flagged": 0}
    counts["paraphrase_tolerated"] = 0
    for kind, old, new, inputs in pairs:
        flagged = not judge(rule, old, new, inputs).tolerated
        if kind == "meaning":
            counts["meaning_flagged" if flagged else "meaning_missed"] += 1
        else:
            counts["paraphrase_flagged" if flagged else "paraphrase_tolerated"] += 1
    return counts


def cost_us(rule: Rule, pairs: list[Labelled], repeats: int) -> float:
    """Median microseconds of one comparison, over ``repeats`` passes of ``pairs``."""
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _, old, new, inputs in pairs:
            judge(rule, old, new, inputs)
        samples.append((time.perf_counter() - started) / len(pairs))
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200, help="passes over the corpus")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    arguments = parser.parse_args()

    corpus: list[Labelled] = [(p.kind, p.old, p.new, None) for p in CORPUS]
    both_ways = corpus + [(kind, new, old, None) for kind, old, new, _ in corpus]
    grounded: list[Labelled] = [(p.kind, p.old, p.new, p.inputs) for p in GROUNDED_CORPUS]
    results: dict[str, dict[str, Any]] = {}
    for title, pairs in (("corpus", corpus), ("grounded corpus", grounded)):
        meaning = sum(kind == "meaning" for kind, *_ in pairs)
        print(
            f"{title}, {len(pairs)} pairs: {meaning} meaning changes, "
            f"{len(pairs) - meaning} paraphrases"
        )
        header = f"{'rule':<14} {'flagged':>8} {'missed':>7} {'false alarms':>13} {'µs/text':>8}"
        print(header)
        print("-" * len(header))
        for name, rule in RULES.items():
            counts = confusion(rule, pairs)
            timed = both_ways if pairs is corpus else pairs
            microseconds = cost_us(rule, timed, arguments.repeats)
            results.setdefault(name, {})[title] = {
                **counts,
                "us_per_comparison": round(microseconds, 1),
            }
            print(
                f"{name:<14} {counts['meaning_flagged']:>5}/{meaning:<2} "
                f"{counts['meaning_missed']:>7} "
                f"{counts['paraphrase_flagged']:>7}/{len(pairs) - meaning:<5} {microseconds:>8.1f}"
            )
        print()
    facts_rule = RULES["facts()"]
    for pair in (*CORPUS, *GROUNDED_CORPUS):
        inputs = getattr(pair, "inputs", None)
        if pair.kind == "meaning" and judge(facts_rule, pair.old, pair.new, inputs).tolerated:
            print(f"facts() misses ({pair.fact}): {pair.old!r} -> {pair.new!r}")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
