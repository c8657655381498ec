"""A run: the ordered record of the step calls made in one test case."""

from __future__ import annotations

import contextvars
import itertools
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

JsonValue = Any
"""A value in its JSON form: dict, list, str, int, float, bool or None."""


@dataclass(frozen=True)
class StepContext:
    """A step being executed; the cassette layer tags HTTP interactions with it."""

    step: str
    prompts: Mapping[str, str]
    call_index: int | None
    """The index of its ``StepCall`` in the active run, None outside a run."""
    parent: StepContext | None


@dataclass(slots=True)
class StepCall:
    """One call of a step, in its JSON form."""

    index: int
    step: str
    parent: int | None
    inputs: dict[str, JsonValue]
    prompts: dict[str, str]
    output: JsonValue = None
    duration_s: float = 0.0
    error: str | None = None
    contract_broken: bool = False
    schema: str | None = None
    """A fingerprint of the step's output schema."""
    responses: list[str] = field(default_factory=list)
    """Fingerprints of the HTTP responses the call consumed, in order."""
    usage: list[Any] = field(default_factory=list)
    """What each of those responses cost (the cassette layer's ``ModelCall``), in the
    same order: stored with the golden value, so that its figures outlive the answers."""
    after: object = field(default=None, compare=False, repr=False)
    """The call or request it followed in its code, inside the same parent (``follows``)."""
    forked: bool = field(default=False, compare=False, repr=False)
    """Whether it started in another thread or task than the one ``after`` ended in."""
    started: int = field(default=0, compare=False, repr=False)
    """When it started among the calls and requests of the session (``follows``)."""


@dataclass
class Run:
    """The step calls of one test case, in the order they started."""

    case_id: str | None = None
    test_id: str | None = None
    calls: list[StepCall] = field(default_factory=list)
    prompt_sources: dict[str, str] = field(default_factory=dict)
    """The source of every prompt version used, by version."""
    output_types: dict[str, Any] = field(default_factory=dict)
    """The output annotation of every step called, by step name."""
    metrics: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """The metrics (``@step(metrics=[...])``) of every step called, by step name."""
    executing: list[StepContext] = field(default_factory=list, repr=False, compare=False)
    """The step calls of this run that have started and not yet ended, from any thread."""
    _numbering: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    """Steps of one run may start in several threads at once: each call gets its own
    index, the one it is stored at."""

    def begin_call(
        self,
        step: str,
        parent: int | None,
        inputs: dict[str, JsonValue],
        prompts: dict[str, str],
        schema: str | None = None,
    ) -> StepCall:
        with self._numbering:
            call = StepCall(len(self.calls), step, parent, inputs, prompts, schema=schema)
            self.calls.append(call)
        return call

    def calls_of(self, step: str) -> list[StepCall]:
        return [call for call in self.calls if call.step == step]

    def scope_of(self, call: StepCall) -> object:
        """What ``call`` runs inside: its parent call, or this run at the top level."""
        parent = call.parent
        return self.calls[parent] if parent is not None and parent < len(self.calls) else self


_active_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "promptflow_active_run", default=None
)


def active_run() -> Run | None:
    """The run step calls are recorded into, or None outside a recorded test."""
    return _active_run.get()


@contextmanager
def recording_run(run: Run) -> Iterator[Run]:
    """Make ``run`` the active run for the duration of the block."""
    token = _active_run.set(run)
    # Its top level starts here, whatever ran in this context before.
    position = _position.set(_Position(run, None, _unit()))
    try:
        yield run
    finally:
        _position.reset(position)
        _active_run.reset(token)


@dataclass(frozen=True)
class JudgeTag:
    """A judge at work on one field of one step call: its HTTP calls are tagged with it."""

    step: str
    field: str


_current_judge: contextvars.ContextVar[JudgeTag | None] = contextvars.ContextVar(
    "promptflow_current_judge", default=None
)


def current_judge() -> JudgeTag | None:
    """The judge whose model calls are being made in this context, or None."""
    return _current_judge.get()


@contextmanager
def judging(tag: JudgeTag) -> Iterator[JudgeTag]:
    """Tag the HTTP calls made in the block as the judge's of ``tag.step`` and ``tag.field``."""
    token = _current_judge.set(tag)
    try:
        yield tag
    finally:
        _current_judge.reset(token)


# -- the order of a run's calls and requests in its code ----------------------------------


@dataclass(frozen=True, slots=True)
class _Position:
    """Where the code of one context stands: inside which step call (or at the top of
    which run), after which call or request, in which thread and task."""

    scope: object
    last: object
    unit: tuple[int, int]


_position: contextvars.ContextVar[_Position | None] = contextvars.ContextVar(
    "promptflow_position", default=None
)
_starts = itertools.count()


def _unit() -> tuple[int, int]:
    """The thread, and the asyncio task in it, that is running."""
    task = None
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no event loop runs in this thread
            task = None
    return threading.get_ident(), id(task) if task is not None else 0


def follows(scope: object) -> tuple[object, bool, int]:
    """What a call or request starting now inside ``scope`` (a step call, or the run for
    the top level) follows in its code: the call or request that ended last in this
    context inside the same scope, None at its start; whether it was forked, that is,
    started in another thread or task than that one ended in; and a number that says
    when it started.

    Code that runs one thing after another keeps one context, so each call follows the
    one before it. A thread pool's tasks (``contextvars.copy_context().run``) and
    ``asyncio.gather``'s each start from a copy of the context made when they were
    submitted: they all follow what ended before, as forks, whichever started first.
    Code that runs each step in a copy of its context in its own thread or task, as
    LangGraph runs a graph's nodes, makes calls that follow the same one without being
    forked: those ran one after another there, in the order they started. None of this
    depends on timing, so the stored order can be built from it."""
    started = next(_starts)
    position = _position.get()
    if position is None:
        return None, True, started
    last = position.last if position.scope is scope else None
    return last, position.unit != _unit(), started


def entered(scope: object) -> None:
    """The body of ``scope`` (a step call) starts: nothing has ended in it yet."""
    _position.set(_Position(scope, None, _unit()))


def ended(scope: object, event: object) -> None:
    """``event`` (a call or request inside ``scope``) ended in this context."""
    _position.set(_Position(scope, event, _unit()))
