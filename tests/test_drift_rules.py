"""Drift rules: what counts as drift for each field of a step's output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import pytest
from drift_chains import ONE_STEP_NODE, record_then_rerecord, reply, write_one_step
from llm_fakes import Project
from pydantic import BaseModel
from rapidfuzz import fuzz

from pytest_promptflow import drift
from pytest_promptflow.drift.compare import FieldChange, compare_output
from pytest_promptflow.drift.policy import DriftPolicy, PolicyDefaults


def changes(annotation: Any, golden: Any, current: Any, **defaults: Any) -> list[FieldChange]:
    return compare_output(golden, current, DriftPolicy(annotation, PolicyDefaults(**defaults)))


def verdicts(found: list[FieldChange]) -> list[tuple[str, str, bool]]:
    """Each change as (path, rule, tolerated)."""
    return [(change.path, change.rule, change.tolerated) for change in found]


# -- exact ------------------------------------------------------------------------------


class Urgency(BaseModel):
    level: Annotated[int, drift.exact()]
    queue: Annotated[str, drift.exact()]


def test_exact_makes_any_change_drift() -> None:
    found = changes(Urgency, {"level": 3, "queue": "billing"}, {"level": 4, "queue": "Billing"})

    assert found == [
        FieldChange("level", "changed", 3, 4, "exact", tolerated=False),
        FieldChange("queue", "changed", "billing", "Billing", "exact", tolerated=False),
    ]


def test_equal_outputs_have_no_changes_whatever_the_rules() -> None:
    assert (
        changes(Urgency, {"level": 3, "queue": "billing"}, {"queue": "billing", "level": 3}) == []
    )


# -- similar ----------------------------------------------------------------------------


class Reason(BaseModel):
    reason: Annotated[str, drift.similar(0.8)]


@pytest.mark.parametrize(
    ("old", "new", "score", "tolerated"),
    [
        # rapidfuzz's ratio: 1 - (insertions + deletions) / (len(old) + len(new)).
        ("abcde", "abcdf", 0.8, True),
        ("abcd", "abce", 0.75, False),
        ("abcdefghij", "abcdefghiX", 0.9, True),
        ("The login page rejects my password", "Billing charged me twice this month", 0.435, False),
    ],
    ids=["at-threshold", "below", "above", "unrelated"],
)
def test_similar_tolerates_text_whose_score_reaches_the_threshold(
    old: str, new: str, score: float, tolerated: bool
) -> None:
    (change,) = changes(Reason, {"reason": old}, {"reason": new})

    assert change == FieldChange("reason", "changed", old, new, "similar(0.8)", tolerated, score)
    assert change.score == round(fuzz.ratio(old, new) / 100, 3)


def test_similar_makes_a_change_of_type_drift() -> None:
    (change,) = changes(Reason, {"reason": "The vault is down"}, {"reason": None})

    assert (change.kind, change.rule, change.tolerated, change.score) == (
        "type",
        "similar(0.8)",
        False,
        None,
    )


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_a_similarity_threshold_outside_zero_to_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"drift.similar threshold must be in \[0, 1\]"):
        drift.similar(threshold)


# -- unordered --------------------------------------------------------------------------


class Evidence(BaseModel):
    quote: str
    source: str


class Findings(BaseModel):
    tags: Annotated[list[str], drift.unordered()] = []
    evidence: Annotated[list[Evidence], drift.unordered()] = []
    steps: list[str] = []


def test_unordered_ignores_the_order_of_a_list() -> None:
    golden = {"tags": ["login", "sso", "mfa"]}

    assert changes(Findings, golden, {"tags": ["mfa", "login", "sso"]}) == []


def test_unordered_compares_nested_models_as_a_multiset() -> None:
    first = {"quote": "cannot log in", "source": "body"}
    second = {"quote": "since Monday", "source": "subject"}

    assert changes(Findings, {"evidence": [first, second]}, {"evidence": [second, first]}) == []
    # The same item twice is not the same as two different items.
    found = changes(Findings, {"evidence": [first, second]}, {"evidence": [second, second]})
    assert found
    assert all(change.rule == "unordered" and not change.tolerated for change in found)


def test_unordered_makes_a_changed_item_drift() -> None:
    found = changes(Findings, {"tags": ["login", "sso"]}, {"tags": ["sso", "billing"]})

    assert found
    assert all(change.rule == "unordered" and not change.tolerated for change in found)
    assert {change.new for change in found} & {"billing"}


def test_a_list_without_the_unordered_rule_keeps_its_order() -> None:
    found = changes(
        Findings, {"steps": ["restart", "reinstall"]}, {"steps": ["reinstall", "restart"]}
    )

    assert [change.path for change in found] == ["steps[0]", "steps[1]"]
    assert not any(change.tolerated for change in found)


def test_an_item_inserted_into_an_ordered_list_is_one_added_item() -> None:
    golden = {"steps": ["restart", "reinstall", "call support"], "tags": ["vpn"]}
    current = {
        "steps": ["check the cable", "restart", "reinstall", "call support"],
        "tags": ["vpn"],
    }

    found = changes(Findings, golden, current)

    assert [(change.path, change.kind, change.new) for change in found] == [
        ("steps[0]", "added", "check the cable")
    ]


def test_every_item_of_an_ordered_list_reworded_is_reported_by_position() -> None:
    golden = {"steps": ["restart", "reinstall"], "tags": ["vpn"]}
    current = {"steps": ["restart it", "reinstall it", "call support"], "tags": ["vpn"]}

    found = changes(Findings, golden, current, text_rule="exact")

    assert [(change.path, change.kind, change.old, change.new) for change in found] == [
        ("steps[0]", "changed", "restart", "restart it"),
        ("steps[1]", "changed", "reinstall", "reinstall it"),
        ("steps[2]", "added", None, "call support"),
    ]


def test_items_of_a_list_of_objects_are_compared_field_by_field_by_position() -> None:
    golden = {"items": [{"sku": "A-1", "qty": 2, "gift": True}, {"sku": "B-2", "qty": 1}]}
    current = {"items": [{"sku": "A-1", "qty": 3, "gift": 1}]}

    found = changes(Any, golden, current)

    assert [(change.path, change.kind, change.old, change.new) for change in found] == [
        ("items[0].gift", "type", True, 1),
        ("items[0].qty", "changed", 2, 3),
        ("items[1]", "removed", {"sku": "B-2", "qty": 1}, None),
    ]


@pytest.mark.parametrize(
    ("golden", "current", "expected"),
    [
        ({"items": [{"gift": True}]}, {"items": [{"gift": 1}]}, ("items[0].gift", True, 1)),
        ({"flags": [0, 1]}, {"flags": [0, True]}, ("flags[1]", 1, True)),
        ([[False]], [[0]], ("[0][0]", False, 0)),
    ],
    ids=["flag-became-number", "number-became-flag", "nested-lists"],
)
def test_a_flag_swapped_for_a_number_deep_inside_equal_outputs_is_a_change_of_type(
    golden: Any, current: Any, expected: tuple[str, Any, Any]
) -> None:
    assert golden == current  # as Python sees them

    found = changes(Any, golden, current)

    path, old, new = expected
    assert [(c.path, c.kind, c.old, c.new) for c in found] == [(path, "type", old, new)]
    assert changes(Any, golden, golden) == []


def test_a_flag_swapped_for_a_number_in_a_list_that_changed_otherwise_is_a_change_of_type() -> None:
    golden = {"marks": ["a", 1, "b", False, "d"]}
    current = {"marks": ["a", True, "b", "c", "e", 0]}

    found = changes(Any, golden, current, text_rule="exact")

    assert [(c.path, c.kind, c.old, c.new) for c in found] == [
        ("marks[1]", "type", 1, True),
        ("marks[3]", "type", False, "c"),
        ("marks[4]", "changed", "d", "e"),
        ("marks[5]", "added", None, 0),
    ]


class Handover(BaseModel):
    ticket: Findings
    owner: Annotated[str, drift.exact()]
    attempts: int


def test_only_the_fields_that_differ_are_reported_at_any_depth() -> None:
    golden = {"ticket": {"steps": ["restart"], "tags": ["vpn"]}, "owner": "ops", "attempts": 2}
    current = {"ticket": {"steps": ["restart"], "tags": ["vpn"]}, "owner": "sre", "attempts": 2.5}

    found = changes(Handover, golden, current)

    assert [(change.path, change.kind, change.old, change.new) for change in found] == [
        ("attempts", "type", 2, 2.5),
        ("owner", "changed", "ops", "sre"),
    ]


class Thread(BaseModel):
    labels: Annotated[list[str], drift.unordered()]


class Inbox(BaseModel):
    threads: list[Thread]


def test_unordered_applies_to_a_list_inside_the_items_of_an_ordered_list() -> None:
    golden = {"threads": [{"labels": ["a", "b"]}, {"labels": ["c", "d"]}]}

    assert (
        changes(Inbox, golden, {"threads": [{"labels": ["b", "a"]}, {"labels": ["d", "c"]}]}) == []
    )
    reordered_threads = {"threads": [{"labels": ["c", "d"]}, {"labels": ["a", "b"]}]}
    assert changes(Inbox, golden, reordered_threads)


# -- ignore -----------------------------------------------------------------------------


class Traced(BaseModel):
    trace_id: Annotated[str, drift.ignore()]
    debug: Annotated[Evidence | None, drift.ignore()] = None
    level: int


def test_ignore_never_reports_the_field() -> None:
    golden = {"trace_id": "req_1", "debug": {"quote": "a", "source": "b"}, "level": 2}
    current = {"trace_id": "req_2", "debug": None, "level": 2}

    assert changes(Traced, golden, current) == []
    assert verdicts(changes(Traced, golden, {**current, "level": 3})) == [("level", "exact", False)]


# -- tolerance --------------------------------------------------------------------------


class Scores(BaseModel):
    confidence: Annotated[float, drift.tolerance(0.05)] = 0.0
    cost: Annotated[float, drift.tolerance(rel=0.1)] = 0.0
    tokens: Annotated[int, drift.tolerance(10, rel=0.5)] = 0


@pytest.mark.parametrize(
    ("new", "tolerated"),
    [(0.74, True), (0.66, True), (0.76, False), (0.6, False)],
)
def test_tolerance_allows_an_absolute_move(new: float, tolerated: bool) -> None:
    (change,) = changes(Scores, {"confidence": 0.7}, {"confidence": new})

    assert (change.rule, change.tolerated) == ("tolerance(abs=0.05)", tolerated)
    assert change.score == pytest.approx(new - 0.7)


@pytest.mark.parametrize(
    ("new", "tolerated"),
    [(109.0, True), (91.0, True), (120.0, False), (85.0, False)],
)
def test_tolerance_allows_a_move_by_a_fraction_of_the_golden_value(
    new: float, tolerated: bool
) -> None:
    (change,) = changes(Scores, {"cost": 100.0}, {"cost": new})

    assert (change.rule, change.tolerated) == ("tolerance(rel=0.1)", tolerated)


@pytest.mark.parametrize("new", [110.5, 111.0])
def test_tolerance_rel_is_a_fraction_of_the_golden_value_not_of_the_new_one(new: float) -> None:
    # rel=0.1 of a golden 100 is a move of 10 at most; 111 is 10% of 111, not of 100.
    (change,) = changes(Scores, {"cost": 100.0}, {"cost": new})

    assert (change.rule, change.tolerated) == ("tolerance(rel=0.1)", False)


def test_tolerance_allows_the_larger_of_its_absolute_and_relative_moves() -> None:
    assert verdicts(changes(Scores, {"tokens": 4}, {"tokens": 14})) == [
        ("tokens", "tolerance(abs=10, rel=0.5)", True)
    ]
    assert verdicts(changes(Scores, {"tokens": 100}, {"tokens": 150})) == [
        ("tokens", "tolerance(abs=10, rel=0.5)", True)
    ]
    assert verdicts(changes(Scores, {"tokens": 100}, {"tokens": 49})) == [
        ("tokens", "tolerance(abs=10, rel=0.5)", False)
    ]


def test_tolerance_makes_a_value_that_is_no_longer_a_number_drift() -> None:
    assert verdicts(changes(Scores, {"confidence": 0.7}, {"confidence": "high"})) == [
        ("confidence", "tolerance(abs=0.05)", False)
    ]


# -- where a rule comes from --------------------------------------------------------------


class Note(BaseModel):
    text: str
    author: str
    pinned: Annotated[str, drift.exact()] = ""


class Ticket(BaseModel):
    note: Annotated[Note, drift.similar(0.5)]
    history: Annotated[list[Note], drift.ignore()] = []
    attachments: list[Annotated[str, drift.similar(0.3)]] = []


def test_a_field_inherits_the_rule_of_its_parent() -> None:
    golden = {"note": {"text": "printer jammed", "author": "maria"}}
    current = {"note": {"text": "printer is jammed", "author": "mario"}}

    assert verdicts(changes(Ticket, golden, current)) == [
        ("note.author", "similar(0.5)", True),
        ("note.text", "similar(0.5)", True),
    ]


def test_a_rule_on_a_list_covers_its_items_and_their_fields() -> None:
    golden = {"note": {"text": "a", "author": "b"}, "history": [{"text": "x", "author": "y"}]}
    current = {"note": {"text": "a", "author": "b"}, "history": [{"text": "z", "author": "w"}, {}]}

    assert changes(Ticket, golden, current) == []


def test_a_rule_on_the_item_type_of_a_list_applies_to_each_item() -> None:
    found = changes(Ticket, {"attachments": ["invoice.pdf"]}, {"attachments": ["invoice2.pdf"]})

    assert verdicts(found) == [("attachments[0]", "similar(0.3)", True)]


def test_the_deepest_declared_rule_wins() -> None:
    golden = {"note": {"text": "printer jammed", "author": "maria", "pinned": "yes"}}
    current = {"note": {"text": "printer jammed", "author": "maria", "pinned": "yes!"}}

    assert verdicts(changes(Ticket, golden, current)) == [("note.pinned", "exact", False)]


def test_a_rule_on_the_whole_output_applies_to_it() -> None:
    found = changes(Annotated[str, drift.similar(0.5)], "the vault is down", "the vault is slow")

    assert verdicts(found) == [("(output)", "similar(0.5)", True)]


class Escalation(BaseModel):
    kb_article: Annotated[str, drift.exact()] | None = None
    retries: Annotated[int, drift.tolerance(5)] | None = None


def test_a_rule_inside_an_optional_field_applies() -> None:
    # `Annotated[str, rule] | None` is how an optional field with a rule is usually written.
    found = changes(
        Escalation, {"kb_article": "KB-1000", "retries": 1}, {"kb_article": "KB-1001", "retries": 3}
    )

    assert verdicts(found) == [
        ("kb_article", "exact", False),
        ("retries", "tolerance(abs=5)", True),
    ]


@dataclass
class Measured:
    confidence: Annotated[float, drift.tolerance(0.05)]
    label: Annotated[str, drift.exact()]


def test_rules_on_the_fields_of_a_dataclass_apply() -> None:
    # A step's output may be any type pydantic validates, dataclasses included.
    found = changes(
        Measured, {"confidence": 0.7, "label": "bug"}, {"confidence": 0.72, "label": "Bug"}
    )

    assert verdicts(found) == [
        ("confidence", "tolerance(abs=0.05)", True),
        ("label", "exact", False),
    ]


# -- project defaults ----------------------------------------------------------------------


class Plain(BaseModel):
    summary: str
    level: int
    flags: list[bool] = []
    extra: dict[str, Any] = {}


def test_a_field_without_a_rule_is_facts_for_text_and_exact_otherwise() -> None:
    golden = {"summary": "Acme Vault is down for everyone.", "level": 4, "flags": [True]}
    current = {"summary": "Acme Vault is down for all users.", "level": 5, "flags": [False]}

    found = changes(Plain, golden, current)

    assert verdicts(found) == [
        ("flags[0]", "exact", False),
        ("level", "exact", False),
        ("summary", "facts()", True),
    ]
    assert found[-1].score is None


def test_the_project_can_make_similar_the_default_text_rule() -> None:
    golden = {"summary": "Acme Vault is down for everyone.", "level": 4, "flags": [True]}
    current = {"summary": "Acme Vault is down for all users.", "level": 5, "flags": [False]}

    found = changes(Plain, golden, current, text_rule="similar")

    assert verdicts(found) == [
        ("flags[0]", "exact", False),
        ("level", "exact", False),
        ("summary", "similar(0.85)", False),
    ]
    assert found[-1].score == 0.8


def test_the_default_similarity_comes_from_the_project_defaults() -> None:
    golden = {"summary": "Acme Vault is down for everyone.", "level": 4}
    current = {"summary": "Acme Vault is down for all users.", "level": 4}

    assert verdicts(changes(Plain, golden, current, similarity=0.8, text_rule="similar")) == [
        ("summary", "similar(0.8)", True)
    ]


def test_an_output_without_a_model_gets_the_defaults() -> None:
    assert verdicts(
        changes(Any, {"a": "Refund approved.", "b": 1}, {"a": "Refund not approved.", "b": 2})
    ) == [
        ("a", "facts()", False),
        ("b", "exact", False),
    ]
    assert verdicts(
        changes(Any, {"a": "text", "b": 1}, {"a": "texts", "b": 2}, text_rule="similar")
    ) == [
        ("a", "similar(0.85)", True),
        ("b", "exact", False),
    ]


def test_a_field_that_appears_or_disappears_is_drift_by_default() -> None:
    found = changes(Plain, {"summary": "s", "level": 1}, {"summary": "s", "extra": {"k": 1}})

    assert [(c.path, c.kind, c.tolerated) for c in found] == [
        ("extra", "added", False),
        ("level", "removed", False),
    ]


def test_structure_changes_can_be_tolerated() -> None:
    found = changes(
        Plain,
        {"summary": "s", "level": 1},
        {"summary": "s", "extra": {"k": 1}},
        structure_changes_fail=False,
    )

    assert [(c.path, c.kind, c.tolerated) for c in found] == [
        ("extra", "added", True),
        ("level", "removed", True),
    ]


def test_tolerating_structure_changes_does_not_tolerate_list_items_that_change() -> None:
    # A field that appears is a change of structure; an item more in a list is a change
    # of content, judged by the list's rule: `unordered` means the same items.
    found = changes(
        Findings,
        {"tags": ["login"], "steps": ["restart"]},
        {"tags": ["login", "sso"], "steps": []},
        structure_changes_fail=False,
    )

    assert found
    assert not any(change.tolerated for change in found)


# -- the gate, as a user sees it -------------------------------------------------------------

GATE_CASES = [
    # (annotation, golden reply, re-recorded reply, tolerated changes or None for a drift,
    #  the drift's line in the failure)
    pytest.param("Annotated[int, drift.exact()]", 3, 3, 0, None, id="exact-same"),
    pytest.param(
        "Annotated[int, drift.exact()]",
        3,
        4,
        None,
        "value: 3 -> 4  [[]exact; DRIFT[]]",
        id="exact-changed",
    ),
    pytest.param(
        "Annotated[str, drift.similar(0.8)]",
        "The login page rejects my password",
        "The login page rejects the password",
        1,
        None,
        id="similar-reworded",
    ),
    pytest.param(
        "Annotated[str, drift.similar(0.8)]",
        "The login page rejects my password",
        "Billing charged me twice this month",
        None,
        'value: "The login page rejects my password" -> "Billing charged me twice this month"'
        "  [[]similar(0.8), score 0.435; DRIFT[]]",
        id="similar-unrelated",
    ),
    pytest.param(
        "Annotated[list[str], drift.unordered()]",
        ["sso", "mfa"],
        ["mfa", "sso"],
        0,
        None,
        id="unordered-reordered",
    ),
    pytest.param(
        "Annotated[list[str], drift.unordered()]",
        ["mfa", "sso"],
        ["billing", "mfa"],
        None,
        'value: removed (was "sso")  [[]unordered; DRIFT[]]',
        id="unordered-changed",
    ),
    pytest.param("Annotated[str, drift.ignore()]", "req_1", "req_2", 0, None, id="ignore"),
    pytest.param(
        "Annotated[float, drift.tolerance(0.05)]", 0.7, 0.73, 1, None, id="tolerance-abs-within"
    ),
    pytest.param(
        "Annotated[float, drift.tolerance(0.05)]",
        0.7,
        0.8,
        None,
        "value: 0.7 -> 0.8  [[]tolerance(abs=0.05), score 0.1; DRIFT[]]",
        id="tolerance-abs-beyond",
    ),
    pytest.param(
        "Annotated[int, drift.tolerance(rel=0.1)]", 100, 108, 1, None, id="tolerance-rel-within"
    ),
    pytest.param(
        "Annotated[int, drift.tolerance(rel=0.1)]",
        100,
        120,
        None,
        "value: 100 -> 120  [[]tolerance(rel=0.1), score 20; DRIFT[]]",
        id="tolerance-rel-beyond",
    ),
]


@pytest.mark.parametrize(("annotation", "golden", "current", "tolerated", "line"), GATE_CASES)
def test_the_gate_judges_a_rerecorded_answer_by_the_field_rule(
    project: Project,
    annotation: str,
    golden: Any,
    current: Any,
    tolerated: int | None,
    line: str | None,
) -> None:
    write_one_step(project, annotation)

    result = record_then_rerecord(project, reply({"value": golden}), reply({"value": current}))

    if line is None:
        result.assert_outcomes(passed=1)
        result.stdout.re_match_lines([rf"^label +1 +1 +{tolerated} +0 +0$"])
        result.stdout.no_fnmatch_line("*drift from the golden run*")
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                f"drift from the golden run ({ONE_STEP_NODE}):",
                "  step label — model: the model answered the same request differently",
                f"    {line}",
                "If the new outputs are right, accept them as golden:",
                f"  pytest {ONE_STEP_NODE} --promptflow-accept",
            ]
        )
        result.stdout.re_match_lines([r"^label +1 +1 +0 +1 +0 +\(1 model\)$"])


def test_the_default_similarity_comes_from_the_ini_file(project: Project) -> None:
    project.pytester.makeini("[pytest]\npromptflow_text_rule = similar\n")
    write_one_step(project, "str")
    golden = reply({"value": "Acme Vault is down for everyone."})
    current = reply({"value": "Acme Vault is down for all users."})

    failed = record_then_rerecord(project, golden, current)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*value: * -> *  [[]similar(0.85), score 0.8; DRIFT[]]"])

    project.pytester.makeini(
        "[pytest]\npromptflow_text_rule = similar\npromptflow_similarity = 0.75\n"
    )
    project.record().assert_outcomes(passed=1)


def test_structure_changes_fail_unless_the_ini_file_tolerates_them(project: Project) -> None:
    # A dict output keeps its schema when a key appears, so only the structure changes.
    write_one_step(project, "dict[str, str]")
    golden = reply({"value": {"product": "Acme Vault"}})
    current = reply({"value": {"product": "Acme Vault", "plan": "team"}})

    failed = record_then_rerecord(project, golden, current)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(['    value.plan: added: "team"  [[]facts(); DRIFT[]]'])

    project.pytester.makeini("[pytest]\npromptflow_structure_changes = tolerate\n")
    passed = project.record()
    passed.assert_outcomes(passed=1)
    passed.stdout.re_match_lines([r"^label +1 +1 +1 +0 +0$"])


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        (
            "promptflow_similarity = high",
            "promptflow_similarity = 'high' must be a number from 0 to 1",
        ),
        (
            "promptflow_similarity = 1.5",
            "promptflow_similarity = '1.5' must be a number from 0 to 1",
        ),
        (
            "promptflow_structure_changes = ignore",
            "promptflow_structure_changes = 'ignore' must be fail or tolerate",
        ),
        (
            "promptflow_text_rule = fuzzy",
            "promptflow_text_rule = 'fuzzy' must be facts or similar",
        ),
    ],
)
def test_a_bad_drift_default_in_the_ini_file_is_a_usage_error(
    project: Project, ini: str, message: str
) -> None:
    project.pytester.makeini(f"[pytest]\n{ini}\n")
    write_one_step(project, "str")

    result = project.run()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_unordered_reports_the_items_lost_and_gained_not_positions() -> None:
    found = changes(Findings, {"tags": ["a", "b", "c"]}, {"tags": ["c", "d", "b"]})

    assert [(c.path, c.kind, c.old, c.new, c.tolerated) for c in found] == [
        ("tags", "removed", "a", None, False),
        ("tags", "added", None, "d", False),
    ]
