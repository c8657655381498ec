"""A labelled project for the quality tests: a classify step over ten tickets whose
expected category is known, and the fake model's answers under three prompt versions.

Under ``v1`` the model is right on t0-t6 (7/10); ``v2`` fixes t7 and t8 and breaks t0
(9 - 1 = 8/10: fixed 2, broken 1); ``v3`` breaks t0-t5 (1/10 right: broken 6).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from drift_chains import HEADER
from llm_fakes import Project

CHAIN = """
CLASSIFY = Prompt.load("prompts/classify.j2")


class Label(BaseModel):
    category: Literal["billing", "bug", "outage"]
    summary: str = ""


def mentions_the_category(output: Label, expected: dict) -> bool:
    return output.summary.startswith(output.category)


@step(prompt=CLASSIFY, metrics=[mentions_the_category])
def classify(text: str) -> Label:
    return Label.model_validate_json(ask(CLASSIFY.render(text=text)))


class Ticket(BaseModel):
    text: str


@pytest.mark.promptflow_cases("tickets.jsonl", model=Ticket)
def test_classify(chain_case):
    classify(chain_case.input.text)
"""

EXPECTED = ["billing", "bug", "outage", "billing", "bug", "outage", "billing", "bug", "outage",
            "billing"]  # fmt: skip
WRONG = {"billing": "bug", "bug": "outage", "outage": "billing"}
VERSIONS = {
    "v1": {f"t{i}" for i in range(7)},
    "v2": {f"t{i}" for i in range(1, 9)},
    "v3": {"t6"},
}
CASES = [f"t{i}" for i in range(10)]


def answer(version: str, case: str) -> str:
    expected = EXPECTED[int(case[1:])]
    category = expected if case in VERSIONS[version] else WRONG[expected]
    return json.dumps({"category": category, "summary": f"{category}: ticket {case}"})


def write_project(project: Project, version: str = "v1", extra_ini: str = "") -> Project:
    """The labelled project with its prompt at ``version``, every version's answers
    scripted."""
    (project.path / "prompts").mkdir(exist_ok=True)
    (project.path / "prompts" / "classify.j2").write_text(f"Classify {version}: {{{{ text }}}}")
    (project.path / "fixtures").mkdir(exist_ok=True)
    lines = [
        json.dumps(
            {"id": case, "text": f"ticket {case}", "expected": {"classify": {"category": label}}}
        )
        for case, label in zip(CASES, EXPECTED, strict=True)
    ]
    (project.path / "fixtures" / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    for name in VERSIONS:
        for case in CASES:
            project.llm.answers[f"Classify {name}: ticket {case}"] = answer(name, case)
    project.pytester.makeini("[pytest]\n" + textwrap.dedent(extra_ini))
    source = HEADER.replace(
        "from typing import Annotated, Any", "from typing import Annotated, Any, Literal"
    )
    project.write(source + textwrap.dedent(CHAIN))
    return project


def set_version(project: Project, version: str) -> None:
    (project.path / "prompts" / "classify.j2").write_text(f"Classify {version}: {{{{ text }}}}")


def report(project: Project, name: str) -> dict[str, Any]:
    return json.loads((project.path / name).read_text(encoding="utf-8"))


def row(document: dict[str, Any], field: str = "category") -> dict[str, Any]:
    [found] = [r for r in document["quality"] if r["field"] == field]
    return found


def outcomes(version: str) -> dict[str, bool]:
    return {case: case in VERSIONS[version] for case in CASES}


# -- a labelled project whose case ids, test path and labels are payloads -------------------

HOSTILE_LABELS = [
    "<img src=x onerror=window.pwned=3>",
    "**bold** [link](http://127.0.0.1:9/l) ![i](http://127.0.0.1:9/i.png)",
    "</script><script>window.pwned=4</script><!--",
]
HOSTILE_CASES = [
    "<img src=x onerror=window.pwned=1>",
    "` ![t](http://127.0.0.1:9/t.png) **PASSED** `",
    "café <b>|x",  # pytest escapes a non-ASCII character in the node id...
    "a|b _em_ \\ back",  # ...and a backslash
]
HOSTILE_FOLDER = "<img src=x onerror=window.pwned=2> **x** _y_ ~~z~~"
HOSTILE_GATE = (
    "promptflow_quality =\n    classify.category no broken\n    classify.category >= 10%\n"
)

HOSTILE_CHAIN = """
from typing import Literal


class Label(BaseModel):
    category: Literal[{labels}]


@step
def classify(text: str) -> Label:
    return Label.model_validate_json(ask(text))


class Ticket(BaseModel):
    text: str


@pytest.mark.promptflow_cases("../fixtures/tickets.jsonl", model=Ticket)
def test_classify(chain_case):
    classify(chain_case.input.text)
"""


def hostile_label(case: int, shift: int = 0) -> str:
    """The label case number ``case`` expects, or with ``shift`` the one after it."""
    return HOSTILE_LABELS[(case + shift) % len(HOSTILE_LABELS)]


def write_hostile_project(project: Project) -> Project:
    """Four cases with payloads for ids, expecting payload labels, their test in a folder
    named by a payload; recorded right, then recorded again answering each case the next
    label: every case broken, both quality requirements not met."""
    (project.path / "fixtures").mkdir()
    lines = [
        json.dumps(
            {
                "id": case,
                "text": f"ticket {number}",
                "expected": {"classify": {"category": hostile_label(number)}},
            }
        )
        for number, case in enumerate(HOSTILE_CASES)
    ]
    (project.path / "fixtures" / "tickets.jsonl").write_text("\n".join(lines) + "\n")
    folder = project.path / HOSTILE_FOLDER
    folder.mkdir()
    labels = ", ".join(json.dumps(label) for label in HOSTILE_LABELS)
    source = textwrap.dedent(HEADER) + textwrap.dedent(HOSTILE_CHAIN).format(labels=labels)
    (folder / "test_chain.py").write_text(source)
    # The test's folder is not a package: endpoint.py is found on the project's root.
    project.pytester.makeini(f"[pytest]\npythonpath = .\n{HOSTILE_GATE}")
    for number in range(len(HOSTILE_CASES)):
        project.llm.answers[f"ticket {number}"] = json.dumps({"category": hostile_label(number)})
    project.record().assert_outcomes(passed=len(HOSTILE_CASES))
    for number in range(len(HOSTILE_CASES)):
        answer = {"category": hostile_label(number, shift=1)}
        project.llm.answers[f"ticket {number}"] = json.dumps(answer)
    return project


UNCALLED_STEP = """

class Reply(BaseModel):
    body: str


@step
def draft(text: str) -> Reply:
    return Reply(body=text)
"""


def add_uncalled_step(project: Project) -> None:
    """A step ``draft`` that no test calls: a requirement on it is not evaluated."""
    chain = project.path / "test_chain.py"
    chain.write_text(chain.read_text() + UNCALLED_STEP)


REGRESSION_GATE = (
    "promptflow_quality =\n"
    "    classify.category no worse\n"
    "    classify.mentions_the_category >= 50%\n"
    "    draft.* >= 90%\n"
)
"""Under v3: not met (worse), met (10/10), not evaluated (no test calls draft)."""


def record_regression(project: Project, *reports: str) -> Project:
    """The labelled project recorded under ``v1``, then under ``v3`` (t0-t5 broken: a
    worse verdict) with ``REGRESSION_GATE``, writing ``reports``."""
    write_project(project, "v1", REGRESSION_GATE)
    add_uncalled_step(project)
    project.record().assert_outcomes(passed=10)
    set_version(project, "v3")
    options = [f"--promptflow-report={name}" for name in reports]
    result = project.record(*options, mode="new")
    # "no worse" is the policy for the field: its broken items fail the session, not
    # their own tests.
    result.assert_outcomes(passed=10)
    assert result.ret == 1
    return project
