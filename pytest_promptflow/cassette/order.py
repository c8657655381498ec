"""The order a recorded run stores its step calls and interactions in: a function of
their parents, steps, inputs, requests and answers, never of timing.

Each call and request knows what it followed in its code (``trace.follows``): the call
or request that ended before it in the same context, inside the same parent. Code that
runs one thing after another makes a chain, stored in the order it ran. Calls and
requests forked from the same point into other threads or tasks (a thread pool's tasks,
``asyncio.gather``'s) are stored sorted by what they are: step, inputs, output and
answers for a call (and the same of everything inside it), request key and answer for a
request; each with the chain that follows it in its own thread or task. What the code
went on to do in the thread or task it forked from comes after them, in the order it
started there (several, when a framework runs each step in a copy of the context).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_promptflow.trace import Run, StepCall


@dataclass(eq=False, slots=True)
class RequestEvent:
    """A request of the run, played or recorded, as the stored order sees it."""

    scope: object
    """The step call that made it, or the run for a request outside any step."""
    after: object
    forked: bool
    started: int
    exchange: tuple[str, str]
    """Its request key and the fingerprint of its answer."""
    stored: Any = field(default=None)
    """What is stored of it, when it was recorded (an ``Interaction``)."""


_Node = StepCall | RequestEvent


def stable_order(
    run: Run, requests: Sequence[RequestEvent]
) -> tuple[list[int], list[RequestEvent]]:
    """The indices of ``run.calls`` and the requests, in the order they are stored."""
    calls = run.calls
    inside: dict[int, list[_Node]] = {}
    everything: list[_Node] = [*calls, *requests]
    for member in everything:
        scope = run.scope_of(member) if isinstance(member, StepCall) else member.scope
        inside.setdefault(id(scope), []).append(member)
    following: dict[int, dict[int | None, list[_Node]]] = {}
    for scope_id, nodes in inside.items():
        siblings = {id(node) for node in nodes}
        successors: dict[int | None, list[_Node]] = {}
        for node in nodes:
            after = id(node.after) if id(node.after) in siblings else None
            successors.setdefault(after, []).append(node)
        following[scope_id] = successors
    keys = _content_keys(run, inside)

    def next_of(scope: object, after: _Node | None) -> list[_Node]:
        found = following.get(id(scope), {}).get(id(after) if after is not None else None, [])
        # Forks first, each sorted by what it is; then what went on where ``after``
        # ended: one thread or task runs one thing at a time, so in the order it started.
        forks = sorted((node for node in found if node.forked), key=lambda n: keys[id(n)])
        went_on = sorted((node for node in found if not node.forked), key=lambda n: n.started)
        return forks + went_on

    ordered_calls: list[int] = []
    ordered_requests: list[RequestEvent] = []
    # Depth first, without recursion: a chain may be thousands of requests long.
    work: list[tuple[object, _Node | None]] = [(run, None)]
    while work:
        place, current = work.pop()
        if isinstance(current, StepCall):
            ordered_calls.append(current.index)
        elif current is not None:
            ordered_requests.append(current)
        work += [(place, n) for n in reversed(next_of(place, current))]
        if isinstance(current, StepCall):
            work.append((current, None))  # what it did inside comes before what follows it
    if len(ordered_calls) < len(calls) or len(ordered_requests) < len(requests):
        # Reachable from nowhere (made under another run's call): last, as they came.
        seen_calls, seen_requests = set(ordered_calls), {id(r) for r in ordered_requests}
        ordered_calls += [call.index for call in calls if call.index not in seen_calls]
        ordered_requests += [r for r in requests if id(r) not in seen_requests]
    return ordered_calls, ordered_requests


def _content_keys(run: Run, inside: dict[int, list[_Node]]) -> dict[int, tuple[str, ...]]:
    """What each call and request is, to sort those forked from one point: a request by
    its key and answer, a call by its step, inputs, output, answers and everything
    inside it."""
    keys: dict[int, tuple[str, ...]] = {}
    for nodes in inside.values():
        for node in nodes:
            if isinstance(node, RequestEvent):
                keys[id(node)] = ("request", *node.exchange)
    # A call's calls start after it, so they come later in the run: done first here.
    for call in reversed(run.calls):
        within = sorted("\x1f".join(keys[id(node)]) for node in inside.get(id(call), []))
        keys[id(call)] = (
            "call",
            call.step,
            _canonical(call.inputs),
            _canonical(call.output),
            "\x1f".join(sorted(call.responses)),
            call.error or "",
            hashlib.sha256("\x1e".join(within).encode("utf-8")).hexdigest(),
        )
    return keys


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=repr)


def renumbered(run: Run, order: Sequence[int]) -> Iterator[StepCall]:
    """The calls of ``run`` in ``order``, each index and parent index renumbered to it."""
    position = {old: new for new, old in enumerate(order)}
    for old in order:
        call = run.calls[old]
        parent = position.get(call.parent) if call.parent is not None else None
        yield _renumbered(call, position[old], parent)


def _renumbered(call: StepCall, index: int, parent: int | None) -> StepCall:
    if call.index == index and call.parent == parent:
        return call
    return replace(call, index=index, parent=parent)
