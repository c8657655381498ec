"""The facts rule: free text judged by what it asserts, not by how it is spelled."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pytest
from drift_chains import (
    ONE_STEP_NODE,
    record_then_rerecord,
    reply,
    write_one_step,
)
from drift_corpus import CORPUS, GROUNDED_CORPUS, GroundedPair, TextPair
from hypothesis import given
from hypothesis import strategies as st
from llm_fakes import Project
from pydantic import BaseModel

from pytest_promptflow import drift
from pytest_promptflow.cassette.format import GoldenStep, RecordedRun
from pytest_promptflow.drift.classify import judge_case
from pytest_promptflow.drift.compare import compare_output
from pytest_promptflow.drift.policy import DriftPolicy, Judgement, PolicyDefaults, Rule
from pytest_promptflow.drift.text_facts import FactChange, Grounds, drifted, fact_changes
from pytest_promptflow.trace import Run

facts_module = importlib.import_module("pytest_promptflow.drift.text_facts")


def kinds(old: str, new: str) -> list[str]:
    return [change.kind for change in fact_changes(old, new)]


# -- the corpus: meaning changes flagged, paraphrases tolerated ---------------------------


def _pair_id(pair: TextPair) -> str:
    return f"{pair.kind}-{pair.fact}-{pair.old[:24]}"


@pytest.mark.parametrize(
    "pair", [p for p in CORPUS if p.kind == "meaning" and p.fact != "synonym"], ids=_pair_id
)
def test_a_change_of_meaning_is_a_change_of_facts_of_its_kind(pair: TextPair) -> None:
    assert pair.fact in kinds(pair.old, pair.new)


@pytest.mark.parametrize("pair", [p for p in CORPUS if p.kind == "paraphrase"], ids=_pair_id)
def test_a_paraphrase_keeps_every_fact(pair: TextPair) -> None:
    assert fact_changes(pair.old, pair.new) == []
    assert fact_changes(pair.new, pair.old) == []


def test_a_synonym_swap_keeps_every_fact_which_is_what_judges_are_for() -> None:
    (pair,) = [p for p in CORPUS if p.fact == "synonym"]

    assert fact_changes(pair.old, pair.new) == []


def test_the_corpus_is_large_and_balanced_enough_to_mean_something() -> None:
    assert len(CORPUS) >= 80
    assert {p.fact for p in CORPUS if p.kind == "meaning"} >= {
        "negation",
        "number",
        "date",
        "time",
        "name",
        "identifier",
        "email",
        "url",
        "quote",
    }
    assert sum(p.kind == "paraphrase" for p in CORPUS) >= 35
    assert sum(p.kind == "meaning" and p.fact == "number" for p in CORPUS) >= 20
    assert {p.kind for p in GROUNDED_CORPUS} == {"meaning", "paraphrase"}


# -- each kind of fact, both ways ----------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("Refund approved.", "Refund not approved.", FactChange("negation", (), ("not",))),
        ("You can't sign in.", "You can sign in.", FactChange("negation", ("can't",), ())),
        ("It no longer fails.", "It fails.", FactChange("negation", ("no longer",), ())),
        ("We never call.", "We now call.", FactChange("negation", ("never",), ())),
        (
            "Within 24 hours.",
            "Within 48 hours.",
            FactChange("number", ("24 hours",), ("48 hours",)),
        ),
        (
            "It costs 49.99 USD.",
            "It costs 4.99 USD.",
            FactChange("number", ("49.99 USD",), ("4.99 USD",)),
        ),
        ("Hi Hannah, welcome.", "Hi Helen, welcome.", FactChange("name", ("Hannah",), ("Helen",))),
        (
            "See KB-0042 first.",
            "See KB-0024 first.",
            FactChange("identifier", ("KB-0042",), ("KB-0024",)),
        ),
        (
            "Mail a@acme.test now.",
            "Mail b@acme.test now.",
            FactChange("email", ("a@acme.test",), ("b@acme.test",)),
        ),
        (
            "On Tuesday, we ship.",
            "On Friday, we ship.",
            FactChange("date", ("Tuesday",), ("Friday",)),
        ),
        ("Call at 3pm today.", "Call at 4pm today.", FactChange("time", ("3pm",), ("4pm",))),
    ],
)
def test_each_kind_of_fact_names_what_was_removed_and_added(
    old: str, new: str, expected: FactChange
) -> None:
    assert fact_changes(old, new) == [expected]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("We will reply within 24 hours.", "We will answer within one day."),
        ("Reply within 2 days.", "Reply within 48 hours."),
        ("A $49.99 refund.", "A refund of 49.99 USD."),
        ("Twenty-four hours at most.", "At most 24 hours."),
        ("You cannot sign in.", "You are unable to sign in."),
        ("We won't charge you.", "We will not charge you."),
        ("Call at 3 PM.", "Call at 15:00."),
        ("Tuesday works for Hannah.", "Hannah said that Tuesday works."),
        ("See https://acme.test/help.", "Help is at https://acme.test/help"),
        ("No later than Friday.", "By Friday at the latest."),
        ("We reply within a day.", "We reply within 24 hours."),
        ("Refunds take three days.", "Refunds take 3 days."),
        ("It can't be done today.", "It cannot be done today."),
    ],
)
def test_rewording_that_keeps_the_facts_is_no_change(old: str, new: str) -> None:
    assert fact_changes(old, new) == []
    assert fact_changes(new, old) == []


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("Refunds take three days.", "Refunds take four days.", "number"),
        ("We reply within a day.", "We reply within a week.", "number"),
        ("It costs twenty-five dollars.", "It costs twenty-six dollars.", "number"),
        ("Two agents are on it.", "Three agents are on it.", "number"),
        ("Nobody saw it.", "Somebody saw it.", "negation"),
        ("It isn't ready.", "It is ready.", "negation"),
        ("It's not ready yet.", "It's ready yet.", "negation"),
    ],
)
def test_numbers_in_words_and_negations_without_a_digit_are_facts(
    old: str, new: str, kind: str
) -> None:
    assert kinds(old, new) == [kind]
    assert kinds(old, old) == []


def test_two_amounts_that_trade_the_words_they_qualify_are_a_change() -> None:
    (change,) = fact_changes(
        "We refunded 120.00 of the 100.00 you were charged.",
        "We refunded 100.00 of the 120.00 you were charged.",
    )

    assert change.kind == "number"
    assert "120.00" in " ".join(change.removed)


def test_a_quote_must_stay_word_for_word() -> None:
    assert kinds('It said "disk full" twice.', 'It said "disk is full" twice.') == ["quote"]
    assert kinds('It said "disk full" twice.', 'Twice it said "Disk full".') == []


def test_a_short_label_is_a_fact_as_a_whole() -> None:
    assert kinds("billing", "outage") == ["text"]
    assert kinds("Acme Pulse", "acme pulse.") == []


def test_two_amounts_trading_places_in_a_long_sentence_name_what_each_qualified() -> None:
    old = (
        "The customer paid 120.00 USD but was promised 100.00 USD; the difference will be "
        "refunded within 5 days."
    )
    new = (
        "The customer paid 100.00 USD but was promised 120.00 USD; the difference will be "
        "refunded within 5 days."
    )

    assert fact_changes(old, new) == [
        FactChange(
            "number",
            ("120.00 USD (customer, paid)", "100.00 USD (promised)"),
            ("120.00 USD (promised)", "100.00 USD (customer, paid)"),
        )
    ]


# Two clauses, each a number with what it qualifies; the sentence around them is long.
_CLAUSES = (
    ("the customer paid", "for the laptop"),
    ("the store refunded", "for the cable"),
    ("the courier delivered", "to the warehouse"),
    ("the team ordered", "for the office"),
    ("the bank held", "on the account"),
)
_UNITS = ("USD", "EUR", "days", "hours", "GB", "", "%")
_JOINERS = (" but ", ", while ", "; ", ", whereas ", " and ")
_PREAMBLES = (
    "",
    "As we discussed on the phone, ",
    "According to the notes in the ticket history, ",
)
_AFTERWORDS = (
    ".",
    ", as the summary sent yesterday explains in more detail.",
    "; please keep this message for your records.",
)


@st.composite
def two_clause_sentences(draw: st.DrawFn) -> tuple[str, str, str]:
    """A sentence whose two clauses each hold a number, the sentence with the two numbers
    traded, and the sentence with its clauses in the other order."""
    (first_verb, first_object), (second_verb, second_object) = draw(
        st.lists(st.sampled_from(_CLAUSES), min_size=2, max_size=2, unique=True)
    )
    one, other = draw(
        st.lists(st.integers(min_value=2, max_value=990), min_size=2, max_size=2, unique=True)
    )
    unit = draw(st.sampled_from(_UNITS))
    joiner = draw(st.sampled_from(_JOINERS))
    preamble, afterword = draw(st.sampled_from(_PREAMBLES)), draw(st.sampled_from(_AFTERWORDS))

    def clause(verb: str, value: int, thing: str) -> str:
        amount = f"{value}{unit}" if unit == "%" else f"{value} {unit}".strip()
        return f"{verb} {amount} {thing}"

    first, second = clause(first_verb, one, first_object), clause(second_verb, other, second_object)
    traded_first = clause(first_verb, other, first_object)
    traded_second = clause(second_verb, one, second_object)
    return (
        f"{preamble}{first}{joiner}{second}{afterword}",
        f"{preamble}{traded_first}{joiner}{traded_second}{afterword}",
        f"{preamble}{second}{joiner}{first}{afterword}",
    )


@given(two_clause_sentences())
def test_two_numbers_trading_places_is_a_change_and_clauses_trading_places_is_not(
    sentences: tuple[str, str, str],
) -> None:
    sentence, numbers_traded, clauses_traded = sentences

    assert [change.kind for change in fact_changes(sentence, numbers_traded)] == ["number"]
    assert fact_changes(sentence, clauses_traded) == []
    assert fact_changes(sentence, sentence) == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # passive voice, "X was paid" for "paid X"
        (
            "The customer paid 120.00 USD but was promised 100.00 USD.",
            "120.00 USD was paid by the customer, although 100.00 USD had been promised.",
        ),
        # a number moved to another place in its sentence, with what it qualifies
        (
            "We will credit 20 USD to your account within 3 business days.",
            "Within 3 business days, your account will be credited with 20 USD.",
        ),
        (
            "We refunded 20 USD after you paid 100 USD.",
            "After you paid 100 USD, we refunded 20 USD.",
        ),
        (
            "Two engineers will spend 3 days on the fix.",
            "The fix will take two engineers 3 days.",
        ),
        (
            "The trial lasts 14 days, after which the account is paused for 30 days.",
            "After a 14-day trial, the account is paused for 30 days.",
        ),
    ],
)
def test_numbers_that_keep_what_they_qualify_may_move_in_their_sentence(old: str, new: str) -> None:
    assert fact_changes(old, new) == []
    assert fact_changes(new, old) == []


# -- approximators and bounds --------------------------------------------------------------

APPROXIMATORS = (
    "about",
    "around",
    "roughly",
    "approximately",
    "nearly",
    "some",
    "almost",
    "approx.",
    "circa",
    "close to",
    "~",
)


@pytest.mark.parametrize("approximator", APPROXIMATORS)
def test_an_approximator_keeps_the_number_it_comes_before(approximator: str) -> None:
    exact, approximate = "It takes 24 hours.", f"It takes {approximator} 24 hours."

    assert fact_changes(exact, approximate) == []
    assert fact_changes(approximate, exact) == []
    assert fact_changes(approximate, f"It takes {approximator} one day.") == []
    assert kinds(approximate, f"It takes {approximator} 48 hours.") == ["number"]
    assert kinds(exact, f"It takes {approximator} 48 hours.") == ["number"]


@pytest.mark.parametrize("approximator", APPROXIMATORS[:7])
def test_one_of_a_unit_after_an_approximator_is_still_a_number(approximator: str) -> None:
    assert fact_changes("It helps for an hour.", f"It helps for {approximator} an hour.") == []
    assert fact_changes(f"It helps for {approximator} an hour.", "It helps for an hour.") == []
    assert kinds(f"We waited {approximator} an hour.", f"We waited {approximator} a week.") == [
        "number"
    ]
    # Without a preposition of time "a week" is no number; still, it is the same week.
    assert fact_changes("We waited a week.", f"We waited {approximator} a week.") == []
    assert kinds("We waited a week.", f"We waited {approximator} a day.") == ["number"]


def test_a_changed_number_is_named_with_its_approximator_or_bound() -> None:
    assert fact_changes("Expect it in about 24 hours.", "Expect it in about 48 hours.") == [
        FactChange("number", ("about 24 hours",), ("about 48 hours",))
    ]
    assert fact_changes("It helps for an hour.", "It helps for about two hours.") == [
        FactChange("number", ("an hour",), ("about two hours",))
    ]
    assert fact_changes("Refunds take up to 10 days.", "Refunds take 10 days or more.") == [
        FactChange("number", ("up to 10 days",), ("10 days or more",))
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("The migration needs at least 3 days.", "The migration needs at most 3 days."),
        ("It affects more than 30 users.", "It affects fewer than 30 users."),
        ("Refunds take up to 10 days.", "Refunds take 10 days or more."),
        ("Keep no less than 5 GB free.", "Keep under 5 GB free."),
    ],
)
def test_a_bound_turned_the_other_way_is_a_change(old: str, new: str) -> None:
    assert kinds(old, new) == ["number"]
    assert kinds(new, old) == ["number"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("The migration needs at least 3 days.", "The migration needs 3 days or more."),
        ("Refunds take up to 10 days.", "Refunds take no more than 10 days."),
        ("Refunds take up to 10 days.", "Refunds take 10 days."),
        ("It affects more than 30 users.", "It affects 30 users."),
    ],
)
def test_a_bound_kept_added_or_removed_is_no_change(old: str, new: str) -> None:
    assert fact_changes(old, new) == []
    assert fact_changes(new, old) == []


def test_a_number_joined_to_its_unit_by_a_hyphen_is_a_number_not_a_code() -> None:
    assert fact_changes("You get a 14-day trial.", "Your trial lasts 14 days.") == []
    assert fact_changes("You get a 14-day trial.", "You get a two-week trial.") == []
    assert kinds("You get a two-week trial.", "You get a three-week trial.") == ["number"]
    assert fact_changes("You get a 14-day trial.", "You get a 30-day trial.") == [
        FactChange("number", ("14-day",), ("30-day",))
    ]


# -- grounded facts: what the inputs state ---------------------------------------------------


def _grounded_id(pair: GroundedPair) -> str:
    return f"{pair.kind}-{pair.fact}-{pair.new[:24]}"


@pytest.mark.parametrize(
    "pair", [p for p in GROUNDED_CORPUS if p.kind == "paraphrase"], ids=_grounded_id
)
def test_a_fact_added_that_the_inputs_state_is_grounded(pair: GroundedPair) -> None:
    changes = fact_changes(pair.old, pair.new, Grounds(pair.inputs))

    assert [change.kind for change in changes] == ["grounded"]
    assert not drifted(changes)
    # Grounding is what tolerates it: without the inputs it is new information.
    assert [change.kind for change in fact_changes(pair.old, pair.new)] == [pair.fact]


@pytest.mark.parametrize(
    "pair", [p for p in GROUNDED_CORPUS if p.kind == "meaning"], ids=_grounded_id
)
def test_a_fact_the_inputs_do_not_state_or_one_removed_is_drift_with_inputs(
    pair: GroundedPair,
) -> None:
    changes = fact_changes(pair.old, pair.new, Grounds(pair.inputs))

    assert drifted(changes)
    assert pair.fact in [change.kind for change in changes]


def test_a_replaced_name_is_drift_though_the_inputs_state_the_new_one() -> None:
    inputs = {"text": "Which one is down, Acme Pulse or Acme Vault?"}

    assert fact_changes(
        "Acme Pulse is down for every user.", "Acme Vault is down for every user.", Grounds(inputs)
    ) == [FactChange("name", ("Pulse",), ()), FactChange("grounded", (), ("Vault",))]


def test_a_run_of_names_is_grounded_only_as_a_whole() -> None:
    grounds = Grounds({"text": "Acme Pulse is down, and my vault of files is gone."})

    assert fact_changes("The product is down.", "The Acme Vault product is down.", grounds) == [
        FactChange("name", (), ("Acme Vault",))
    ]


def test_grounds_are_every_string_at_any_depth_and_nothing_else() -> None:
    grounds = Grounds(
        {"ticket": {"thread": [{"from": "ana@acme.test"}, ["Order #4471"]]}, "seats": 12}
    )

    assert not drifted(fact_changes("Noted.", "Noted for ana@acme.test, order #4471.", grounds))
    assert drifted(fact_changes("Noted.", "Noted for 12 seats.", grounds))


def test_a_negation_is_never_grounded() -> None:
    grounds = Grounds({"text": "It does not sync, it never did."})

    assert kinds("It syncs.", "It does not sync.") == ["negation"]
    assert [c.kind for c in fact_changes("It syncs.", "It does not sync.", grounds)] == ["negation"]


# -- as a rule: the default for text, literals exact ---------------------------------------


class Drafted(BaseModel):
    body: str
    queue: Literal["billing", "bug"]
    tone: Annotated[str, drift.similar(0.9)] = "friendly"


def changes(golden: Any, current: Any, **defaults: Any) -> list[tuple[str, str, bool]]:
    found = compare_output(golden, current, DriftPolicy(Drafted, PolicyDefaults(**defaults)))
    return [(change.path, change.rule, change.tolerated) for change in found]


def test_facts_is_the_default_rule_of_free_text_and_literals_stay_exact() -> None:
    golden = {"body": "Your refund was approved.", "queue": "billing"}

    assert changes(golden, {"body": "We approved your refund.", "queue": "bug"}) == [
        ("body", "facts()", True),
        ("queue", "exact", False),
    ]
    assert changes(golden, {"body": "Your refund was not approved.", "queue": "billing"}) == [
        ("body", "facts()", False)
    ]


def test_the_score_of_a_facts_change_names_the_differing_facts() -> None:
    policy = DriftPolicy(Drafted, PolicyDefaults())
    (change,) = compare_output(
        {"body": "Reply within 24 hours.", "queue": "bug"},
        {"body": "Reply within 48 hours.", "queue": "bug"},
        policy,
    )

    assert change.score == 'number -"24 hours" +"48 hours"'


class Triaged(BaseModel):
    reason: str
    note: str = ""
    queue: Annotated[str, drift.exact()] = "bug"


TICKET = {"ticket": {"subject": "Dashboard down", "body": "Our Acme Pulse dashboard is down."}}


def test_a_call_s_inputs_ground_the_facts_its_texts_add_and_only_with_inputs() -> None:
    golden = {"reason": "The dashboard is down."}
    current = {"reason": "The Acme Pulse dashboard is down."}
    policy = DriftPolicy(Triaged)

    (grounded,) = compare_output(golden, current, policy, inputs=TICKET)
    (ungrounded,) = compare_output(golden, current, policy)

    assert (grounded.tolerated, grounded.score) == (True, 'grounded +"Acme Pulse"')
    assert (ungrounded.tolerated, ungrounded.score) == (False, 'name +"Acme Pulse"')
    assert drift.Facts().judge("The dashboard is down.", current["reason"]).tolerated is False


def test_drift_facts_is_still_the_rule_s_factory_after_a_first_comparison() -> None:
    declared_after_comparing = (
        "from pytest_promptflow import drift\n"
        "drift.Facts().judge('It costs 1 USD.', 'It costs 2 USD.')\n"
        "drift.Facts().grounds_of({'text': 'Acme'})\n"
        "assert drift.facts() == drift.Facts(), drift.facts\n"
    )

    finished = subprocess.run(
        [sys.executable, "-c", declared_after_comparing], capture_output=True, text=True
    )

    assert finished.returncode == 0, finished.stderr


@dataclass(frozen=True)
class SameLength(Rule):
    """A rule written against ``judge(old, new)`` alone."""

    name = "same length"

    def judge(self, old: Any, new: Any) -> Judgement:
        return Judgement(tolerated=len(old) == len(new))


class WithOwnRule(BaseModel):
    reason: Annotated[str, SameLength()]


def test_a_rule_with_only_judge_old_new_is_judged_as_before_when_inputs_are_given() -> None:
    (change,) = compare_output(
        {"reason": "abc"}, {"reason": "xyz"}, DriftPolicy(WithOwnRule), inputs=TICKET
    )

    assert (change.rule, change.tolerated) == ("same length", True)


def test_the_inputs_are_read_once_per_call_and_only_once_a_text_adds_a_fact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[str] = []
    extract = facts_module.extract

    def counting_extract(text: str) -> facts_module.Facts:
        read.append(text)
        return extract(text)

    monkeypatch.setattr(facts_module, "extract", counting_extract)
    facts_module._facts_of_inputs.cache_clear()
    facts_module._facts_of.cache_clear()
    inputs = {"ticket": "Ticket T-5150 of Ana Ruiz about Acme Pulse."}
    policy = DriftPolicy(Triaged)

    compare_output(
        {"reason": "Dashboard down.", "note": "Reported today."},
        {"reason": "The dashboard is down.", "note": "It was reported today."},
        policy,
        inputs=inputs,
    )
    assert inputs["ticket"] not in read  # the texts keep their facts: nothing to ground

    changes = compare_output(
        {"reason": "Dashboard down.", "note": "Reported today."},
        {"reason": "Acme Pulse is down.", "note": "Ana Ruiz reported T-5150 today."},
        policy,
        inputs=inputs,
    )
    assert [(c.path, c.tolerated, c.score) for c in changes] == [
        ("note", True, 'grounded +"T-5150" +"Ana Ruiz"'),
        ("reason", True, 'grounded +"Acme Pulse"'),
    ]
    assert read.count(inputs["ticket"]) == 1


def test_the_gate_grounds_each_call_s_output_in_that_call_s_own_inputs() -> None:
    golden = RecordedRun(
        test="t",
        steps=[
            GoldenStep(step="triage", inputs={"text": "Acme Pulse is down."}, output="Down."),
            GoldenStep(step="triage", inputs={"text": "Acme Vault is slow."}, output="Slow."),
        ],
    )
    run = Run(test_id="t")
    run.begin_call(
        "triage", None, {"text": "Acme Pulse is down."}, {}
    ).output = "Acme Pulse is down."
    run.begin_call(
        "triage", None, {"text": "Acme Vault is slow."}, {}
    ).output = "Acme Pulse is slow."

    verdict = judge_case(golden, run)

    assert verdict is not None
    first, second = verdict.steps
    assert [(c.tolerated, c.score) for c in first.changes] == [(True, 'grounded +"Acme Pulse"')]
    assert [(c.tolerated, c.score) for c in second.changes] == [(False, 'name +"Acme Pulse"')]
    assert verdict.drifted


# -- through the gate, as a user sees it -------------------------------------------------------


def test_the_gate_fails_a_meaning_flip_and_tolerates_a_paraphrase(project: Project) -> None:
    write_one_step(project, "str")

    flipped = record_then_rerecord(
        project, reply({"value": "Refund approved."}), reply({"value": "Refund not approved."})
    )

    flipped.assert_outcomes(failed=1)
    flipped.stdout.fnmatch_lines(
        [
            f"drift from the golden run ({ONE_STEP_NODE}):",
            "  step label — model: the model answered the same request differently",
            '    value: "Refund approved." -> "Refund not approved."  '
            '[[]facts(), negation +"not"; DRIFT[]]',
        ]
    )

    shutil.rmtree(project.cassettes)
    reworded = record_then_rerecord(
        project,
        reply({"value": "We will reply within 24 hours."}),
        reply({"value": "Expect our answer in one day."}),
    )
    reworded.assert_outcomes(passed=1)
    reworded.stdout.re_match_lines([r"^label +1 +1 +1 +0 +0$"])


TICKET_TEXT = "Since 9am our Acme Pulse dashboard shows error 503 for every user."


def test_the_gate_tolerates_a_fact_the_step_s_input_states_and_fails_one_it_does_not(
    project: Project,
) -> None:
    write_one_step(project, "str", topic=TICKET_TEXT)
    grounded = record_then_rerecord(
        project,
        reply({"value": "The dashboard is down for everyone."}),
        reply({"value": "The Acme Pulse dashboard is down for everyone."}),
        "--promptflow-report=drift.md",
        topic=TICKET_TEXT,
    )

    grounded.assert_outcomes(passed=1)
    assert (
        '`"The dashboard is down for everyone."` → `"The Acme Pulse dashboard is down for '
        'everyone."` (facts(), grounded +"Acme Pulse"; tolerated)'
    ) in (project.path / "drift.md").read_text()

    shutil.rmtree(project.cassettes)
    ungrounded = record_then_rerecord(
        project,
        reply({"value": "The dashboard is down for everyone."}),
        reply({"value": "The Acme Vault dashboard is down for everyone."}),
        topic=TICKET_TEXT,
    )

    ungrounded.assert_outcomes(failed=1)
    ungrounded.stdout.fnmatch_lines(
        [
            f"drift from the golden run ({ONE_STEP_NODE}):",
            "  step label — model: the model answered the same request differently",
            '    value: "The dashboard is down for everyone." -> '
            '"The Acme Vault dashboard is down for everyone."  [[]facts(), name +"Acme Vault"; '
            "DRIFT[]]",
        ]
    )
