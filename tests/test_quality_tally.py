"""Quality rows: items combined from calls, figures checked against scipy and by hand,
the edges (nothing scored, all right, all wrong, no golden), merging and comparing."""

from __future__ import annotations

import gc
import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from pytest_promptflow.errors import PromptflowError
from pytest_promptflow.quality.comparison import compare_rows
from pytest_promptflow.quality.gate import Requirement, evaluate, parse_requirements
from pytest_promptflow.quality.scoring import Score
from pytest_promptflow.quality.tally import ItemScore, QualityRow, QualityTally, item_scores

TEST = "test_app.py::test_classify"


def label(case: str, expected: str, answered: str, golden_answered: str | None) -> ItemScore:
    return ItemScore(
        TEST,
        case,
        "classify",
        "category",
        "field",
        now=expected == answered,
        golden=None if golden_answered is None else expected == golden_answered,
        labelled=True,
        expected=expected,
        answered=answered,
        golden_answered=golden_answered,
    )


def row_of(*items: ItemScore) -> QualityRow:
    row = QualityRow(TEST, "classify", "category", "field")
    for item in items:
        row.add(item)
    return row


def test_an_item_is_correct_only_when_every_call_is_and_answers_with_its_last_call() -> None:
    first = [Score("category", "field", True, labelled=True, expected="bug", answered="bug")]
    second = [Score("category", "field", False, labelled=True, expected="bug", answered="how-to")]
    metric = [[Score("m", "metric", True, 0.75)], [Score("m", "metric", False, 0.25)]]

    items = {i.name: i for i in item_scores(TEST, "T-1", "classify", [first, second], None)}
    metrics = {i.name: i for i in item_scores(TEST, "T-1", "classify", metric, metric[:1])}

    assert (items["category"].now, items["category"].answered) == (False, "how-to")
    assert items["category"].golden is None
    assert (metrics["m"].now, metrics["m"].value) == (False, 0.5)
    assert (metrics["m"].golden, metrics["m"].golden_value) == (True, 0.75)


def test_the_figures_of_a_row_match_scipy_and_the_hand_count() -> None:
    # 14 cases: 11 right in the golden run, 13 right now; two fixed, none broken.
    items = [label(f"T-{i:02}", "billing", "billing", "billing") for i in range(10)]
    items += [label("T-10", "bug", "bug", "bug")]
    items += [label("T-11", "bug", "bug", "billing"), label("T-12", "outage", "outage", "bug")]
    items += [label("T-13", "outage", "bug", "bug")]
    row = row_of(*items).to_json()

    assert row["now"]["correct"] == 13
    assert row["now"]["scored"] == 14
    assert row["golden"]["correct"] == 11
    assert row["golden"]["scored"] == 14
    for side, correct in (("now", 13), ("golden", 11)):
        interval = scipy_stats.binomtest(correct, 14).proportion_ci(method="wilson")
        assert row[side]["rate"] == correct / 14
        assert row[side]["low"] == pytest.approx(interval.low, abs=1e-12)
        assert row[side]["high"] == pytest.approx(interval.high, abs=1e-12)
    assert [round(row["golden"]["low"], 3), round(row["golden"]["high"], 3)] == [0.524, 0.924]
    assert [round(row["now"]["low"], 3), round(row["now"]["high"], 3)] == [0.685, 0.987]
    assert (row["fixed"], row["broken"]) == (["T-11", "T-12"], [])
    assert row["p_value"] == pytest.approx(
        2 * scipy_stats.binom.cdf(-1, 2, 0.5) + scipy_stats.binom.pmf(0, 2, 0.5)
    )
    assert row["p_value"] == 0.25
    assert row["verdict"] == "inconclusive"
    assert row["labels"] == ["billing", "bug", "outage"]
    #                     answered: billing bug outage
    assert row["confusion"] == [[10, 0, 0], [0, 2, 0], [0, 1, 1]]
    per_label = {figures["label"]: figures for figures in row["per_label"]}
    assert per_label["bug"]["precision"] == pytest.approx(2 / 3)
    assert per_label["bug"]["recall"] == 1.0
    assert per_label["outage"]["recall"] == 0.5
    f1 = [1.0, 2 * 2 / (2 + 3), 2 * 1 / (2 + 1)]
    assert row["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert set(row["outcomes"]) == {item.case for item in items}
    assert row["outcomes"]["T-11"] == {
        "golden": False,
        "now": True,
        "expected": "bug",
        "answered": "bug",
        "golden_answered": "billing",
    }


@pytest.mark.parametrize(
    ("answers", "now", "verdict"),
    [
        (["a"] * 5, 5, "unchanged"),  # all right, before and after
        (["b"] * 5, 0, "unchanged"),  # all wrong, before and after
    ],
)
def test_the_edges_all_right_and_all_wrong(answers: list[str], now: int, verdict: str) -> None:
    row = row_of(*[label(f"c{i}", "a", answer, answer) for i, answer in enumerate(answers)])
    data = row.to_json()

    assert data["now"]["correct"] == now
    assert data["now"]["rate"] == now / 5
    assert (data["p_value"], data["verdict"]) == (None, verdict)
    if now == 5:
        assert data["now"]["high"] == 1.0
        assert data["macro_f1"] == 1.0
    else:
        assert data["now"]["low"] == 0.0
        assert data["macro_f1"] == 0.0


def test_nothing_scored_and_no_golden_value() -> None:
    empty = QualityRow(TEST, "classify", "category", "field").to_json()
    new = row_of(label("c1", "a", "a", None), label("c2", "a", "b", None)).to_json()

    assert empty["now"] == {"correct": 0, "scored": 0, "rate": None, "low": None, "high": None}
    assert empty["golden"] is None
    assert empty["verdict"] == "new"
    assert new["golden"] is None
    assert (new["fixed"], new["broken"], new["p_value"], new["verdict"]) == ([], [], None, "new")


def test_a_significant_regression_is_worse() -> None:
    items = [label(f"c{i}", "a", "b", "a") for i in range(6)]
    data = row_of(*items).to_json()

    assert data["broken"] == [f"c{i}" for i in range(6)]
    assert data["p_value"] == pytest.approx(scipy_stats.binom.pmf(0, 6, 0.5))
    assert data["verdict"] == "worse"


ITEMS = st.lists(
    st.builds(
        label,
        st.sampled_from(["c1", "c2", "c3", "c4", "c5", "c6"]),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["a", "b"]),
        st.none() | st.sampled_from(["a", "b"]),
    ),
    max_size=6,
    unique_by=lambda item: item.case,
)


@given(ITEMS)
def test_a_row_s_figures_read_alone_are_those_of_its_json(items: list[ItemScore]) -> None:
    row = row_of(*items)

    data = row.to_json()

    assert row.items == {item.case: item for item in items}
    assert (row.fixed, row.broken) == (data["fixed"], data["broken"])
    assert (row.p_value(), row.verdict()) == (data["p_value"], data["verdict"])
    assert (row.now_rate(), row.golden_rate()) == (data["now"], data["golden"])
    assert row.labelled is (data["labels"] is not None)


def test_a_row_keeps_its_items_as_objects_the_garbage_collector_stops_tracking() -> None:
    row = row_of(*[label(f"c{i}", "a", "b", "a") for i in range(50)])

    gc.collect()

    held = [value for value in gc.get_referents(row) if isinstance(value, dict)]
    kept = [value for value in gc.get_referents(*held) if isinstance(value, tuple)]
    assert len(kept) == 50
    assert not any(gc.is_tracked(value) for value in kept)
    assert row.to_json()["broken"] == [f"c{i}" for i in sorted(range(50), key=str)]


def test_a_float_metric_has_its_mean_and_t_interval() -> None:
    values = [0.2, 0.4, 0.9, 1.0]
    row = QualityRow(TEST, "draft", "politeness", "metric")
    for i, value in enumerate(values):
        row.add(ItemScore(TEST, f"c{i}", "draft", "politeness", "metric", value >= 0.5,
                          value >= 0.5, value=value, golden_value=value))  # fmt: skip
    mean = row.to_json()["mean"]["now"]
    low, high = scipy_stats.t.interval(
        0.95, len(values) - 1, loc=sum(values) / 4, scale=scipy_stats.sem(values)
    )
    assert mean["value"] == pytest.approx(sum(values) / 4)
    assert (mean["low"], mean["high"]) == (pytest.approx(low), pytest.approx(high))
    assert row.to_json()["now"]["correct"] == 2


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc"),
                          st.sampled_from("abc") | st.none()), max_size=30))  # fmt: skip
def test_rows_merged_from_shards_give_the_figures_of_one_run(
    triples: list[tuple[str, str, str | None]],
) -> None:
    items = [label(f"c{i}", *triple) for i, triple in enumerate(triples)]
    whole = QualityTally()
    whole.add(items)
    shards = [QualityTally() for _ in range(3)]
    for i, item in enumerate(items):
        shards[i % 3].add([item])
    merged = QualityTally()
    for shard in random.sample(shards, 3):
        merged.merge_json(json.loads(json.dumps(shard.to_json())))

    assert merged.to_json() == whole.to_json()


def test_a_case_scored_by_several_test_items_is_one_item_right_only_when_each_is() -> None:
    # A step test runs once per recorded call of a case: T-1's first call broke, its
    # second did not; T-2's first was fixed, its second is still wrong.
    row = row_of(
        label("T-1", "bug", "how-to", "bug"),
        label("T-1", "bug", "bug", "bug"),
        label("T-2", "bug", "bug", "billing"),
        label("T-2", "bug", "outage", "outage"),
    )
    metric = QualityRow(TEST, "draft", "politeness", "metric")
    for value, was in ((0.75, 0.5), (0.25, 0.5), (1.0, 0.25)):
        metric.add(ItemScore(TEST, "T-1", "draft", "politeness", "metric", value >= 0.5,
                             was >= 0.5, value=value, golden_value=was))  # fmt: skip

    data = row.to_json()
    assert (data["now"]["scored"], data["now"]["correct"], data["golden"]["correct"]) == (2, 0, 1)
    assert (data["fixed"], data["broken"]) == ([], ["T-1"])
    assert data["outcomes"]["T-1"]["answered"] == "how-to"
    assert data["outcomes"]["T-2"] == {
        "golden": False,
        "now": False,
        "expected": "bug",
        "answered": "outage",
        "golden_answered": "billing",
    }
    assert metric.to_json()["outcomes"]["T-1"] == {
        "golden": False,
        "now": False,
        "value": 0.25,
        "golden_value": 0.25,
    }


@given(
    st.lists(
        st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from("abc"),
                  st.sampled_from("abc"), st.sampled_from("abc") | st.none()),
        max_size=20,
    ),
    st.randoms(use_true_random=False),
)  # fmt: skip
def test_items_of_one_case_joined_in_any_order_and_shard_give_the_same_row(
    quadruples: list[tuple[str, str, str, str | None]], shuffler: random.Random
) -> None:
    items = [label(*quadruple) for quadruple in quadruples]
    whole = QualityTally()
    whole.add(items)
    shuffled = shuffler.sample(items, len(items))
    shards = [QualityTally() for _ in range(3)]
    for i, item in enumerate(shuffled):
        shards[i % 3].add([item])
    merged = QualityTally()
    for shard in shards:
        merged.merge_json(json.loads(json.dumps(shard.to_json())))

    assert merged.to_json() == whole.to_json()


def test_compare_pairs_base_now_with_head_now_by_case() -> None:
    base = row_of(
        label("c1", "a", "a", None), label("c2", "a", "b", None), label("c3", "a", "a", None)
    )
    head = row_of(
        label("c1", "a", "b", None), label("c2", "a", "a", None), label("c4", "a", "a", None)
    )

    [paired] = compare_rows([base.to_json()], [head.to_json()])
    data = paired.to_json()

    assert (data["fixed"], data["broken"]) == (["c2"], ["c1"])
    assert data["outcomes"]["c4"]["golden"] is None
    assert data["golden"]["scored"] == 2
    assert data["golden"]["correct"] == 1


def test_requirements_are_read_and_refused_with_how_to_write_them() -> None:
    parsed = parse_requirements(
        ["classify.category >= 90%", "", "classify.level no worse", "draft.* no broken"]
    )
    assert [str(r) for r in parsed] == [
        "classify.category >= 90%",
        "classify.level no worse",
        "draft.* no broken",
    ]
    assert parsed[0].threshold == 0.9
    for line in ["classify >= 90%", "classify.level better", "classify.level >= 120%"]:
        with pytest.raises(PromptflowError, match="promptflow_quality"):
            parse_requirements([line])


def test_requirements_evaluated_on_rows() -> None:
    rows = [row_of(*[label(f"c{i}", "a", "b" if i < 6 else "a", "a") for i in range(10)])]

    def results(line: str) -> tuple[bool | None, str]:
        [result] = evaluate(parse_requirements([line]), rows)
        return result.passed, result.detail

    assert results("classify.category >= 40%")[0] is True
    assert results("classify.category >= 40.1%") == (
        False,
        f"{TEST} classify.category: 4/10 = 40.0% < 40.1%",
    )
    assert results("classify.category no worse")[0] is False
    assert results("classify.* no broken")[0] is False
    assert results("classify.level no broken") == (None, "not evaluated: nothing scored")
    assert Requirement("classify", "*", "rate", 0.5).covers("classify", "level")
