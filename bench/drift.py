"""Drift gate cost: what comparing step outputs with their golden values adds to replay.

A 4-step chain (extract -> classify -> resolve -> draft) of ``@step`` functions, with
pydantic outputs whose fields carry drift rules, runs over N cases through the real
openai SDK. It is recorded once from a local OpenAI-compatible server, which also writes
the golden value of every step call into each case's file. With the server stopped, the
same recordings are replayed twice:

- with comparison: the files as recorded, so every step call is compared with its
  golden value after the test;
- without comparison: the same files with their ``steps`` list emptied; a recorded run
  without golden values is not compared;
- with changed outputs: golden values whose text fields are worded otherwise (with the
  same facts) and whose unordered lists are in another order, so that every step call
  goes through the field-by-field comparison, the default ``facts()`` text rule included,
  and ends with tolerated changes rather than an early equality.

Times cover the run of the tests (setup, call and teardown of every test), not
interpreter start-up or collection; the two replays alternate, and the median of each
is kept.

    python bench/drift.py [--cases 1000] [--repeats 3] [--json PATH]

``bench/text_rules.py`` measures one text comparison on its own.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import (
    TIMER_PLUGIN,
    chat_completion,
    client_fixture,
    local_chat_completions,
    timed_pytest,
)
from werkzeug import Request, Response

PORT = 8762
BASE_URL = f"http://127.0.0.1:{PORT}/v1"
STEPS = ("extract", "classify", "resolve", "draft")


CLIENT_FIXTURE = client_fixture(BASE_URL)

CHAIN = """
from __future__ import annotations

import json
from typing import Annotated, Literal

from openai import OpenAI
from pydantic import BaseModel, Field

from pytest_promptflow import Prompt, drift, step

MODEL = "gpt-4o-mini"

EXTRACT = Prompt.from_string(
    "Task: extract\\n"
    "Read this support ticket from {{ ticket.customer }} about {{ ticket.product }}.\\n"
    "Subject: {{ ticket.subject }}\\n{{ ticket.body }}\\n"
    'Answer with a JSON object: "product", "summary", "severity" (1 to 5) and "symptoms".',
    name="extract",
)
CLASSIFY = Prompt.from_string(
    "Task: classify\\n"
    "Problem with {{ problem.product }}: {{ problem.summary }}\\n"
    "{% for symptom in problem.symptoms %}- {{ symptom }}\\n{% endfor %}"
    'Answer with a JSON object: "category", "urgency" (1 to 5), "reason" and "tags".',
    name="classify",
)
RESOLVE = Prompt.from_string(
    "Task: resolve\\n"
    "A {{ classification.category }} problem of urgency {{ classification.urgency }} with "
    "{{ problem.product }}: {{ problem.summary }} ({{ classification.reason }})\\n"
    'Answer with a JSON object: "action", "kb_article", "eta_hours" and "steps".',
    name="resolve",
)
DRAFT = Prompt.from_string(
    "Task: draft\\n"
    "Write to {{ ticket.customer }} about {{ problem.product }}: {{ resolution.action }}\\n"
    "{% for item in resolution.steps %}{{ loop.index }}. {{ item }}\\n{% endfor %}"
    'Answer with a JSON object: "subject", "body", "word_count" and "links".',
    name="draft",
)


class Ticket(BaseModel):
    customer: str
    product: str
    subject: str
    body: str = Field(min_length=10)


class Problem(BaseModel):
    product: Annotated[str, drift.exact()]
    summary: Annotated[str, drift.facts()]
    severity: int = Field(ge=1, le=5)
    symptoms: Annotated[list[str], Field(min_length=1), drift.unordered()]


class Classification(BaseModel):
    category: Literal["billing", "bug", "account", "how-to", "outage"]
    urgency: Annotated[int, Field(ge=1, le=5), drift.exact()]
    reason: str
    tags: Annotated[list[str], drift.unordered()]


class Resolution(BaseModel):
    action: Annotated[str, drift.facts()]
    kb_article: Annotated[str, drift.exact()]
    eta_hours: int = Field(ge=0)
    steps: list[str] = Field(min_length=1)


class Reply(BaseModel):
    subject: str
    body: Annotated[str, drift.facts()]
    word_count: int = Field(ge=1)
    links: Annotated[list[str], drift.unordered()]


def ask(client: OpenAI, prompt: str) -> str:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format={"type": "json_object"},
        temperature=0,
    )
    return reply.choices[0].message.content or ""


@step(prompt=EXTRACT)
def extract(ticket: Ticket, client: OpenAI) -> Problem:
    return Problem.model_validate(json.loads(ask(client, EXTRACT.render(ticket=ticket))))


@step(prompt=CLASSIFY)
def classify(problem: Problem, client: OpenAI) -> Classification:
    reply = ask(client, CLASSIFY.render(problem=problem))
    return Classification.model_validate(json.loads(reply))


@step(prompt=RESOLVE)
def resolve(problem: Problem, classification: Classification, client: OpenAI) -> Resolution:
    reply = ask(client, RESOLVE.render(problem=problem, classification=classification))
    return Resolution.model_validate(json.loads(reply))


@step(prompt=DRAFT)
def draft(ticket: Ticket, problem: Problem, resolution: Resolution, client: OpenAI) -> Reply:
    reply = ask(client, DRAFT.render(ticket=ticket, problem=problem, resolution=resolution))
    return Reply.model_validate(json.loads(reply))
"""

TEST = """
import pytest

from chain import Ticket, classify, draft, extract, resolve

@pytest.mark.promptflow_cases("cases.jsonl", model=Ticket)
def test_chain(chain_case, chain_run, client):
    ticket = chain_case.input
    problem = extract(ticket, client)
    classification = classify(problem, client)
    resolution = resolve(problem, classification, client)
    reply = draft(ticket, problem, resolution, client)

    assert [call.step for call in chain_run.calls] == ["extract", "classify", "resolve", "draft"]
    assert problem.product == ticket.product
    assert reply.body.startswith(f"Dear {ticket.customer}")
"""

PRODUCTS = ("Acme Ledger", "Acme Pulse", "Acme Vault", "Acme Relay", "Acme Canvas")
TROUBLES = (
    ("charged twice this month", "two identical payments appear on the card statement"),
    ("the dashboard returns 503 errors", "every page fails for the whole team since morning"),
    ("the password reset email never arrives", "nothing in the inbox or the spam folder"),
    ("exports stop halfway", "the CSV download ends after a few hundred rows"),
    ("cannot invite a new colleague", "the invitation button stays greyed out"),
    ("the mobile app logs me out", "it happens every few minutes on two different phones"),
)
CUSTOMERS = ("Maria Lopez", "Daniel Okafor", "Priya Raman", "Tom Becker", "Aiko Tanaka")
CATEGORIES = ("billing", "bug", "account", "how-to", "outage")


def write_cases(path: Path, count: int) -> None:
    generator = random.Random(20240601)
    lines = []
    for number in range(count):
        product = generator.choice(PRODUCTS)
        subject, detail = generator.choice(TROUBLES)
        ticket = {
            "id": f"T-{number:05d}",
            "customer": generator.choice(CUSTOMERS),
            "product": product,
            "subject": f"{product}: {subject}",
            "body": f"Hello, with {product} {subject}: {detail}. Reference {number}. Thanks.",
        }
        lines.append(json.dumps(ticket))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _field(prompt: str, pattern: str) -> str:
    found = re.search(pattern, prompt)
    return found.group(1).strip() if found else "unknown"


def answer(prompt: str) -> dict[str, object]:
    """A deterministic reply to one step's prompt, derived from its text."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    task = _field(prompt, r"Task: (\w+)")
    if task == "extract":
        product = _field(prompt, r" about (.+?)\.\n")
        subject = _field(prompt, r"Subject: .+?: (.+)\n")
        return {
            "product": product,
            "summary": f"The customer reports that {subject} in {product}.",
            "severity": 1 + digest[0] % 5,
            "symptoms": [subject, f"reported {1 + digest[1] % 9} times", "no workaround"],
        }
    if task == "classify":
        return {
            "category": CATEGORIES[digest[0] % len(CATEGORIES)],
            "urgency": 1 + digest[1] % 5,
            "reason": f"The problem blocks the customer's work ({digest[2] % 40} users).",
            "tags": ["support", CATEGORIES[digest[3] % len(CATEGORIES)], f"tier-{digest[4] % 3}"],
        }
    if task == "resolve":
        return {
            "action": "Reproduce the problem, apply the known fix and confirm with the customer.",
            "kb_article": f"KB-{1000 + int.from_bytes(digest[:2], 'big') % 9000}",
            "eta_hours": digest[2] % 48,
            "steps": ["Reproduce the problem", "Apply the fix", "Confirm with the customer"],
        }
    customer = _field(prompt, r"Write to (.+?) about ")
    body = (
        f"Dear {customer}, thank you for writing to us. We have reproduced the problem and "
        f"applied the fix; please let us know if anything is still wrong. ({digest.hex()[:8]})"
    )
    return {
        "subject": "Re: your support request",
        "body": body,
        "word_count": len(body.split()),
        "links": [f"https://help.example.com/{digest.hex()[:6]}", "https://status.example.com"],
    }


def completion(request: Request) -> Response:
    prompt = json.loads(request.data)["messages"][-1]["content"]
    return chat_completion(request, json.dumps(answer(prompt)))


def write_project(folder: Path, cases: int) -> None:
    folder.mkdir(parents=True)
    (folder / "conftest.py").write_text(CLIENT_FIXTURE + TIMER_PLUGIN)
    (folder / "chain.py").write_text(CHAIN)
    (folder / "test_chain.py").write_text(TEST)
    (folder / "pytest.ini").write_text("[pytest]\n")
    write_cases(folder / "fixtures" / "cases.jsonl", cases)


def record_project(folder: Path) -> None:
    """Record every case of the project in ``folder`` from the local server on ``PORT``."""
    with local_chat_completions(completion, port=PORT):
        run_pytest(folder, "--promptflow-record=all")
    # The recording's timing is no replay's: copies of the project must not carry it.
    os.remove(folder / "elapsed.json")


def chain_arguments(description: str) -> argparse.Namespace:
    """The command line of a benchmark of the chain: ``--cases``, ``--repeats``, ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cases", type=int, default=1000, help="test cases of the chain")
    parser.add_argument("--repeats", type=int, default=3, help="runs per replay (median kept)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args()


@dataclass(frozen=True)
class Outcome:
    seconds: float
    compared: dict[str, int]
    """The ``compared`` column of the promptflow summary, by step."""
    tolerated: dict[str, int]
    """The ``tolerated`` column, by step."""


SUMMARY_ROW = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$")


def run_pytest(folder: Path, *args: str) -> Outcome:
    timing, output = timed_pytest(folder, *args)
    compared, tolerated = {}, {}
    section = re.split(r"^=+ promptflow =+$", output, maxsplit=1, flags=re.M)[-1]
    for line in section.splitlines():
        row = SUMMARY_ROW.match(line)
        if row is not None and row.group(1) in STEPS:
            compared[row.group(1)] = int(row.group(3))
            tolerated[row.group(1)] = int(row.group(4))
    return Outcome(timing.seconds, compared, tolerated)


def empty_golden_values(folder: Path) -> int:
    """Empty the ``steps`` list of every recorded run under ``folder``; returns the count."""
    files = sorted(folder.rglob("*.json"))
    for path in files:
        document = json.loads(path.read_text(encoding="utf-8"))
        document["steps"] = []
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return len(files)


REWORDED_FIELDS = ("summary", "reason", "action", "body", "subject")
UNORDERED_FIELDS = ("symptoms", "tags", "links")


def change_golden_outputs(folder: Path) -> int:
    """Word every golden text otherwise, with the same facts, and reverse every unordered
    list, in each recorded run under ``folder``; returns the number of outputs changed."""
    changed = 0
    for path in sorted(folder.rglob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        for golden in document["steps"]:
            output = golden["output"]
            for name in REWORDED_FIELDS:
                if isinstance(output.get(name), str):
                    output[name] = "As far as we can tell, " + output[name]
            for name in UNORDERED_FIELDS:
                if isinstance(output.get(name), list):
                    output[name] = output[name][::-1]
            if isinstance(output.get("steps"), list):
                output["steps"] = [f"{item}, as usual" for item in output["steps"]]
            changed += 1
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return changed


def expect_compared(outcome: Outcome, count: int, what: str) -> None:
    expected = dict.fromkeys(STEPS, count)
    if outcome.compared != expected:
        raise SystemExit(
            f"replay {what}: expected {expected} compared step calls in the promptflow "
            f"summary, found {outcome.compared}"
        )


@dataclass(frozen=True)
class Measurement:
    cases: int
    without_comparison: list[float]
    with_comparison: list[float]
    with_changed_outputs: list[float]

    @property
    def compared_calls(self) -> int:
        return self.cases * len(STEPS)

    def summary(self) -> dict[str, float | int]:
        without_s = statistics.median(self.without_comparison)
        with_s = statistics.median(self.with_comparison)
        changed_s = statistics.median(self.with_changed_outputs)
        return {
            "cases": self.cases,
            "steps_per_case": len(STEPS),
            "without_comparison_s": round(without_s, 4),
            "with_comparison_s": round(with_s, 4),
            "overhead_pct": round(100.0 * (with_s - without_s) / without_s, 1),
            "with_changed_outputs_s": round(changed_s, 4),
            "changed_overhead_pct": round(100.0 * (changed_s - without_s) / without_s, 1),
        }

    def per_compared_call_us(self, runs: list[float]) -> float:
        without_s = statistics.median(self.without_comparison)
        return 1e6 * (statistics.median(runs) - without_s) / self.compared_calls


def measure(workdir: Path, cases: int, repeats: int) -> Measurement:
    compared_project = workdir / "with-comparison"
    plain_project = workdir / "without-comparison"
    changed_project = workdir / "with-changed-outputs"
    write_project(compared_project, cases)
    record_project(compared_project)

    recorded = sorted((compared_project / "cassettes").rglob("*.json"))
    if len(recorded) != cases:
        raise SystemExit(f"expected {cases} recorded runs, found {len(recorded)}")
    for path in recorded:
        document = json.loads(path.read_text(encoding="utf-8"))
        if [golden["step"] for golden in document["steps"]] != list(STEPS):
            raise SystemExit(f"{path} holds no golden value for every step")
    shutil.copytree(compared_project, plain_project)
    empty_golden_values(plain_project / "cassettes")
    shutil.copytree(compared_project, changed_project)
    change_golden_outputs(changed_project / "cassettes")

    with_times, without_times, changed_times = [], [], []
    for _ in range(repeats):
        with_comparison = run_pytest(compared_project)
        expect_compared(with_comparison, cases, "with comparison")
        with_times.append(with_comparison.seconds)
        without_comparison = run_pytest(plain_project)
        expect_compared(without_comparison, 0, "without comparison")
        without_times.append(without_comparison.seconds)
        with_changes = run_pytest(changed_project)
        expect_compared(with_changes, cases, "with changed outputs")
        if any(with_changes.tolerated.get(step, 0) < cases for step in STEPS):
            raise SystemExit(
                f"replay with changed outputs: expected tolerated changes in every step call, "
                f"found {with_changes.tolerated}"
            )
        changed_times.append(with_changes.seconds)

    return Measurement(cases, without_times, with_times, changed_times)


def main() -> None:
    arguments = chain_arguments(__doc__.split("\n\n")[0])

    with tempfile.TemporaryDirectory(prefix="promptflow-drift-bench-") as temporary:
        measurement = measure(Path(temporary), arguments.cases, arguments.repeats)

    result = measurement.summary()
    print(
        f"{measurement.cases} cases x {len(STEPS)} steps, {measurement.compared_calls} "
        f"compared step calls; median of {arguments.repeats} runs each"
    )
    header = f"{'replay':<32} {'median s':>9} {'overhead':>9} {'per compared call':>18}"
    print(header)
    print("-" * len(header))
    print(f"{'without comparison':<32} {result['without_comparison_s']:>9.3f}")
    for name, runs, overhead in (
        ("with comparison, equal outputs", measurement.with_comparison, "overhead_pct"),
        (
            "with comparison, changed outputs",
            measurement.with_changed_outputs,
            "changed_overhead_pct",
        ),
    ):
        print(
            f"{name:<32} {statistics.median(runs):>9.3f} {result[overhead]:>8.1f}% "
            f"{measurement.per_compared_call_us(runs):>15.1f} µs"
        )
    print(
        "runs (s), in order: without "
        + " ".join(f"{seconds:.3f}" for seconds in measurement.without_comparison)
        + "; equal "
        + " ".join(f"{seconds:.3f}" for seconds in measurement.with_comparison)
        + "; changed "
        + " ".join(f"{seconds:.3f}" for seconds in measurement.with_changed_outputs)
    )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
