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
