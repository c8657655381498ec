"""Recording and replaying one test case's HTTP interactions.

vcrpy's patched HTTP libraries (``cassette/interception.py``) ask whether a request
can be played, for the response, and to keep a new one. ``CaseRecorder`` answers those
questions from the recorded run file with an indexed lookup, tags what it records with
the current step, and writes the file at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vcr.request import Request as VcrRequest

from pytest_promptflow.cassette import latency
from pytest_promptflow.cassette.conversion import (
    LiveRequest,
    live_request,
    live_response,
    recorded_request,
    vcr_response,
)
from pytest_promptflow.cassette.format import (
    AnswerUsage,
    GoldenStep,
    Interaction,
    Latency,
    RecordedRequest,
    RecordedRun,
    Seed,
    golden_steps,
    recorded_run_document,
    response_fingerprint,
    serialize_document,
    write_atomically,
)
from pytest_promptflow.cassette.interception import (
    HttpInterception,
    VcrResponse,
)
from pytest_promptflow.cassette.matching import (
    RecordingIndex,
    canonical_request_key,
)
from pytest_promptflow.cassette.misses import (
    body_diff,
    closest_recording,
    display_path,
    miss_response,
    step_alone_advice,
    step_alone_lines,
)
from pytest_promptflow.cassette.modes import RecordingOptions, RecordMode
from pytest_promptflow.cassette.order import RequestEvent, renumbered, stable_order
from pytest_promptflow.cassette.reading import (
    StoredInteractions,
    read_recorded_run_at,
    request_keys,
)
from pytest_promptflow.cassette.scrub import ScrubbedRequest, Scrubber
from pytest_promptflow.steps import request_step
from pytest_promptflow.trace import Run, StepCall, current_judge, ended, follows, recording_run
from pytest_promptflow.usage import ModelCall


def _answer_usage(call: StepCall) -> list[AnswerUsage] | None:
    """The figures a golden step call keeps of the answers it got (None when the call's
    answers were not all seen by this recorder)."""
    if len(call.usage) != len(call.responses):
        return None
    return [model_call.answer_usage() for model_call in call.usage]


class CaseRecorder:
    """The recorded run of one test case while the test runs."""

    def __init__(
        self,
        path: Path,
        *,
        test_id: str,
        case_id: str | None,
        options: RecordingOptions,
        record_command: str,
        run: Run | None = None,
        seed: Seed | None = None,
        scrubber: Scrubber | None = None,
        legacy_paths: tuple[Path, ...] = (),
        sample: int | None = None,
        case_has_golden: bool = False,
    ) -> None:
        self.path = path
        self.sample = sample
        """Which sample of the case this records, when the case runs several (0-based)."""
        self.case_has_golden = case_has_golden
        """Whether other samples of the case hold golden values: then this sample's first
        recording does not set its own, which accepting does, as for any re-recording."""
        self.missing_sample: str | None = None
        """Said after a miss when this sample was never recorded: how many are."""
        self.legacy_paths = legacy_paths
        """Where older versions of the plugin named this file; read when ``path`` is absent."""
        self.read_from: Path = path
        self.seed = seed
        self.run = run if run is not None else Run(case_id=case_id, test_id=test_id)
        self.test_id = test_id
        self.case_id = case_id
        self.options = options
        self.record_command = record_command
        self.scrubber = scrubber if scrubber is not None else Scrubber(options.secret_patterns)
        self.misses: list[str] = []
        self.recorded: list[Interaction] = []
        self.consumed: list[tuple[int | None, ModelCall]] = []
        """What the usage figures read of every interaction replayed or recorded, with the
        index of the step call that made it (None outside any step)."""
        self._latencies: dict[tuple[str, str], list[Latency]] | None = None
        self._requests: list[RequestEvent] = []
        """Every request played or recorded, with what it followed in its code: what the
        stored order of interactions and golden values is built from."""
        self._refused: dict[int, VcrRequest] = {}
        self._lock = threading.Lock()
        self.loaded: RecordedRun | None = None
        self._interactions = StoredInteractions()
        self._own_count = 0
        self._keys: list[str] = []
        self._index = RecordingIndex(())
        self._pending: tuple[VcrRequest, str] | None = None
        self._last_request: tuple[VcrRequest, RecordedRequest] | None = None
        self._last_scrubbed: tuple[VcrRequest, LiveRequest, ScrubbedRequest] | None = None
        self._active: contextlib.ExitStack | None = None
        self._interception: HttpInterception | None = None
        self._owns_interception = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(
        self,
        interception: HttpInterception | None = None,
        preloaded: tuple[Path, RecordedRun | None] | None = None,
    ) -> None:
        """Read the recorded run (a bad file raises CassetteError), activate the run and
        route intercepted HTTP here. Without ``interception``, HTTP is patched for this
        recorder alone; ``preloaded`` is the file and what was read of it for this
        recorder (one sample's part of it), when that was read already."""
        self.read_from, self.loaded = preloaded or read_recorded_run_at(
            self.path,
            self.legacy_paths,
            test=self.test_id,
            case=self.case_id,
            request_key=self._key_of,
        )
        own = self.loaded.interactions if self.loaded is not None else []
        seeded = self.seed.interactions if self.seed is not None else []
        self._own_count = len(own)
        stored = own if isinstance(own, StoredInteractions) else StoredInteractions(own)
        self._interactions = stored.joined(seeded)
        self._keys = request_keys(own, self._key_of) + [self._key_of(i.request) for i in seeded]
        """The key of each known interaction, computed once when the file is read."""
        self._index = RecordingIndex(self._keys)
        self._owns_interception = interception is None
        self._interception = interception or HttpInterception()
        self._interception.attach(self)
        self._active = contextlib.ExitStack()
        self._active.enter_context(recording_run(self.run))

    def finish(self) -> None:
        """Stop intercepting and leave the run; nothing is written yet."""
        if self._active is not None:
            self._active.close()
            self._active = None
        if self._interception is not None:
            self._interception.detach(self)
            if self._owns_interception:
                self._interception.close()
            self._interception = None

    def stop(self, *, passed: bool) -> Path | None:
        """Stop intercepting and write the file when this run may; returns the path written."""
        self.finish()
        run = self.updated_recorded_run(passed)
        return self.write(run) if run is not None else None

    def write(self, run: RecordedRun) -> Path | None:
        """Write ``run`` to the file, unless it already holds exactly that; returns the
        path written."""
        # Credentials learned late in the test are redacted from what was recorded before.
        document = self.scrubber.json(recorded_run_document(run), patterns=False)
        text = serialize_document(document)
        self.scrubber.check(text, f"cassette {self.path}", document)
        with contextlib.suppress(OSError):
            if self.read_from.read_text(encoding="utf-8") == text:
                return None  # unchanged, and left under the name it has
        write_atomically(self.path, text)
        if self.read_from != self.path:
            # Written under its new name first, so the recording is never lost.
            self.read_from.unlink(missing_ok=True)
        return self.path

    @property
    def golden(self) -> RecordedRun | None:
        """The golden values this run is judged against: its own, else its seed's."""
        if (self.loaded is not None and self.loaded.steps) or self.seed is None:
            return self.loaded
        return RecordedRun(
            test=self.test_id,
            case=self.case_id,
            steps=self.seed.golden,
            prompt_sources=self.seed.prompt_sources,
        )

    def updated_recorded_run(self, passed: bool) -> RecordedRun | None:
        """What the file should now hold, or None when this run leaves it as it is.

        Golden values are written when a case is first recorded and change only when
        accepting, which also drops the recordings this run did not use.
        """
        interactions = self._interactions_to_keep(passed)
        loaded = self.loaded
        steps = loaded.steps if loaded is not None else []
        sources = loaded.prompt_sources if loaded is not None else {}
        accepting = self.options.accept and passed
        # A step tested alone was first recorded in the chain: only accepting sets its golden.
        first_record = (
            not steps
            and self.options.mode is not RecordMode.NONE
            and passed
            and not self.seed
            and not self.case_has_golden
        )
        if accepting and self.options.mode is not RecordMode.ALL:
            used = sorted(self._index.used)
            interactions = [self._interactions[p] for p in used] + self.recorded_in_stable_order
        if (accepting or first_record) and self.run.calls:
            steps, sources = self.accepted_golden()
            if self._same_as_seed(steps):
                return None
        elif interactions is None or (loaded is None and not interactions):
            return None
        return RecordedRun(
            test=self.test_id,
            case=self.case_id,
            interactions=interactions if interactions is not None else list(self._own_interactions),
            steps=steps,
            prompt_sources=sources,
            isolated=True if self.seed is not None else None,
        )

    def accepted_golden(self) -> tuple[list[GoldenStep], dict[str, str]]:
        """The golden values and prompt sources accepting this run writes: every step call
        as it is now (each one that did not change kept as it was written), and the
        source of every prompt version they used."""
        steps = self._kept_where_unchanged(golden_steps(self.stored_run(), _answer_usage))
        sources = {
            version: self.scrubber.text(source)
            for version, source in sorted(self.run.prompt_sources.items())
            if any(version in call.prompts.values() for call in self.run.calls)
        }
        return steps, sources

    def _kept_where_unchanged(self, steps: list[GoldenStep]) -> list[GoldenStep]:
        """The new golden values, with each one that did not change kept as it was
        written: accepting an unchanged case leaves its file as it is, even when it was
        written before golden values kept their answers' figures."""
        before = self.loaded.steps if self.loaded is not None else []
        return [
            old if old.same_value(new) else new for old, new in zip(before, steps, strict=False)
        ] + steps[len(before) :]

    def _same_as_seed(self, steps: list[GoldenStep]) -> bool:
        """A step tested alone that still does what its source recorded needs no file."""
        return (
            self.seed is not None
            and self.loaded is None
            and not self.recorded
            and len(steps) == len(self.seed.golden)
            and all(new.same_value(old) for new, old in zip(steps, self.seed.golden, strict=True))
        )

    @property
    def known_interactions(self) -> Sequence[Interaction]:
        """The recorded interactions this run could replay: its own, then its seed's."""
        return self._interactions

    @property
    def _own_interactions(self) -> Sequence[Interaction]:
        return self._interactions[: self._own_count]

    def comparable_run(self) -> Run:
        """The run as its golden values would store it: with secrets redacted (inputs by
        credential-named fields too), and the answers of each call in an order that does
        not depend on which concurrent request was answered first."""
        known = self.scrubber.secret_count
        inputs = [self.scrubber.fields(call.inputs) for call in self.run.calls]
        # Inputs found clean stay clean, unless another call's inputs taught a new secret.
        learned = self.scrubber.secret_count != known
        calls = [
            self._comparable_call(
                call,
                self.scrubber.json(call_inputs)
                if learned or call_inputs is not call.inputs
                else call_inputs,
            )
            for call, call_inputs in zip(self.run.calls, inputs, strict=True)
        ]
        return dataclasses.replace(self.run, calls=calls)

    def _comparable_call(self, call: StepCall, inputs: dict[str, Any]) -> StepCall:
        output = self.scrubber.json(call.output)
        order = sorted(range(len(call.responses)), key=call.responses.__getitem__)
        if inputs is call.inputs and output is call.output and order == list(range(len(order))):
            return call  # nothing to redact or reorder, as in most calls
        usage = call.usage if len(call.usage) == len(order) else []
        return dataclasses.replace(
            call,
            inputs=inputs,
            output=output,
            responses=[call.responses[i] for i in order],
            usage=[usage[i] for i in order] if usage else [],
        )

    def stored_run(self) -> Run:
        """``comparable_run()`` with its calls in the order they are stored: sequential
        calls as they ran, calls forked from one point (a thread pool's, ``gather``'s)
        sorted by what they are (``cassette/order.py``), parents renumbered to match."""
        comparable = self.comparable_run()
        calls, _ = stable_order(self.run, self._requests)
        return dataclasses.replace(comparable, calls=list(renumbered(comparable, calls)))

    @property
    def recorded_in_stable_order(self) -> list[Interaction]:
        """What this run recorded, in an order that does not depend on which concurrent
        request was answered first (``cassette/order.py``); identical exchanges share
        their latencies as a sorted list, so that re-recording them swaps nothing."""
        with self._lock:
            requests = list(self._requests)
        _, ordered = stable_order(self.run, requests)
        stored = [event for event in ordered if event.stored is not None]
        listed = {id(event.stored) for event in stored}
        # Interactions added by code that is not vcrpy come last, in order.
        extra = [i for i in self.recorded if id(i) not in listed]
        return self._with_kept_latencies(stored) + extra

    def _with_kept_latencies(self, events: list[RequestEvent]) -> list[Interaction]:
        """Each exchange's latencies: those recorded before for the same request and
        answer, else as measured; sorted among identical exchanges."""
        same: dict[tuple[str, str], list[int]] = {}
        for position, event in enumerate(events):
            same.setdefault(event.exchange, []).append(position)
        interactions: list[Interaction] = [event.stored for event in events]
        for exchange, positions in same.items():
            kept = self._recorded_latencies().get(exchange, [])
            measured = [interactions[p].latency for p in positions]
            if not kept and len(positions) == 1:
                continue
            count = len(positions)
            extra = sorted((m for m in measured if m is not None), key=_latency_order)
            chosen = sorted([*kept[:count], *extra][:count], key=_latency_order)
            figures: list[Latency | None] = [*chosen, *[None] * (count - len(chosen))]
            for position, figure in zip(positions, figures, strict=True):
                if interactions[position].latency != figure:
                    interactions[position] = interactions[position].model_copy(
                        update={"latency": figure}
                    )
        return interactions

    def _recorded_latencies(self) -> dict[tuple[str, str], list[Latency]]:
        """The latencies already recorded of each exchange (request key, answer), sorted."""
        if self._latencies is None:
            latencies: dict[tuple[str, str], list[Latency]] = {}
            for key, interaction in zip(self._keys, self._interactions, strict=True):
                if interaction.latency is not None:
                    exchange = (key, response_fingerprint(interaction.response))
                    latencies.setdefault(exchange, []).append(interaction.latency)
            for figures in latencies.values():
                figures.sort(key=_latency_order)
            self._latencies = latencies
        return self._latencies

    def _interactions_to_keep(self, passed: bool) -> list[Interaction] | None:
        mode = self.options.mode
        recorded = self.recorded_in_stable_order
        if mode is RecordMode.NEW and recorded:
            # Adding never loses anything, so a failed test keeps what it recorded.
            return [*self._own_interactions, *recorded]
        if mode is RecordMode.ALL and self.loaded is None:
            if self.seed is not None and all(i in self.seed.interactions for i in recorded):
                return None  # a step alone that got the answers its source recorded
            return recorded or None
        if mode is RecordMode.ALL and passed:
            return recorded
        return None

    # -- what vcrpy asks ---------------------------------------------------------------

    def can_play(self, request: VcrRequest) -> bool:
        if self.options.mode is RecordMode.ALL:
            latency.request_sent()
            return False
        key = self._live_key(request)
        if self._index.peek(key) is not None:
            self._pending = (request, key)
            return True
        if self.options.mode is RecordMode.NONE:
            self._refuse(request, self._miss_message(request))
            return True
        latency.request_sent()
        return False

    def _refuse(self, request: VcrRequest, message: str) -> None:
        """Answer ``request`` with a miss, which fails the test, instead of the network."""
        if message not in self.misses:
            self.misses.append(message)
        self._refused[id(request)] = request

    def play(self, request: VcrRequest) -> VcrResponse:
        if self._refused.pop(id(request), None) is request:
            return miss_response()
        pending, self._pending = self._pending, None
        key = (
            pending[1] if pending is not None and pending[0] is request else self._live_key(request)
        )
        with self._lock:
            position = self._index.peek(key)
            if position is not None:
                self._index.take(key)
        if position is None:
            # Another thread took the last recording of this request since can_play.
            self._refuse(request, self._miss_message(request))
            return miss_response()
        interaction = self._interactions[position]
        self._note_response(interaction, self._keys[position])
        return vcr_response(interaction.response)

    def _note_response(self, interaction: Interaction, key: str, *, recorded: bool = False) -> None:
        """Tell the step call that made the request which answer it got, and note the
        request, with what it followed in its code, for the stored order."""
        context = request_step(self.run, warn=False)
        index = context.call_index if context is not None else None
        self.consumed.append((index, ModelCall.of(interaction)))
        answer = response_fingerprint(interaction.response)
        calls = self.run.calls
        scope: object = self.run
        if index is not None and index < len(calls):
            calls[index].responses.append(answer)
            calls[index].usage.append(self.consumed[-1][1])
            scope = calls[index]
        after, forked, started = follows(scope)
        event = RequestEvent(
            scope, after, forked, started, (key, answer), interaction if recorded else None
        )
        ended(scope, event)
        with self._lock:
            self._requests.append(event)

    def record(self, request: VcrRequest, response: VcrResponse) -> None:
        judge = current_judge()
        context = request_step(self.run) if judge is None else None
        interaction = Interaction(
            step=judge.step if judge is not None else context.step if context else None,
            judge=judge.field if judge is not None else None,
            prompts=dict(context.prompts) if context is not None and judge is None else {},
            request=self._recorded_request(request),
            response=self.scrubber.response(*live_response(response)),
        )
        # As measured; one recorded before for the same exchange is kept when stored.
        interaction.latency = latency.response_received()
        with self._lock:
            self.recorded.append(interaction)
        self._note_response(interaction, self._live_key(request), recorded=True)

    # -- a request's way: vcrpy's -> ours -> scrubbed -> keyed -> played or stored -----

    def _scrubbed(self, request: VcrRequest) -> tuple[LiveRequest, ScrubbedRequest]:
        """The request read (conversion.py) and scrubbed (scrub.py), once for its key and
        its stored form."""
        cached = self._last_scrubbed
        if cached is not None and cached[0] is request:
            return cached[1], cached[2]
        live = live_request(request)
        scrubbed = self.scrubber.request(live)
        self._last_scrubbed = (request, live, scrubbed)
        return live, scrubbed

    def _live_key(self, request: VcrRequest) -> str:
        """The key of ``request`` as stored, the same as ``_key_of(_recorded_request())``:
        the key reads no header, so the stored headers are not built for it."""
        _, scrubbed = self._scrubbed(request)
        return canonical_request_key(
            scrubbed.method,
            scrubbed.url,
            scrubbed.body,
            scrubbed.text,
            self.options.ignored_body_fields,
            scrubbed.base64,
        )

    def _recorded_request(self, request: VcrRequest) -> RecordedRequest:
        cached = self._last_request
        if cached is not None and cached[0] is request:
            return cached[1]
        live, scrubbed = self._scrubbed(request)
        recorded = recorded_request(scrubbed, self.scrubber.request_headers(live))
        self._last_request = (request, recorded)
        return recorded

    def _key_of(self, request: RecordedRequest) -> str:
        """The key of a stored request (read from a file)."""
        return canonical_request_key(
            request.method,
            request.url,
            request.body,
            request.body_text,
            self.options.ignored_body_fields,
            request.body_base64,
        )

    # -- the message of a miss ---------------------------------------------------------

    def _miss_message(self, request: VcrRequest) -> str:
        judge = current_judge()
        context = request_step(self.run) if judge is None else None
        step = context.step if context is not None else None
        case = f" in case {self.case_id}" if self.case_id else ""
        if judge is not None:
            context, step = None, judge.step
            first = (
                f"no recording for a request of the judge of step {step!r}, "
                f"field {judge.field}{case}"
            )
        elif step:
            first = f"no recording for a request of step {step!r}{case}"
        else:
            first = f"no recording for a request made outside any step{case}"
        lines = [
            first,
            f"  test:     {self.test_id}",
            f"  request:  {request.method.upper()} {self.scrubber.url(request.uri)}",
        ]
        if self.seed is not None:
            lines += step_alone_lines(step, self.path, self.loaded is not None, self.seed)
        else:
            lines.append(
                f"  cassette: {display_path(self.path)}"
                + ("" if self.loaded is not None else " (does not exist yet)")
            )
        if context is not None:
            lines += self._prompt_lines(step, context.prompts)
        live = self._recorded_request(request)
        closest = closest_recording(self._interactions, live, step)
        if closest is not None:
            position, recorded = closest
            made_by = f"step {recorded.step!r}" + (
                f", its judge of field {recorded.judge}" if recorded.judge else ""
            )
            lines.append(
                f"  closest recording: interaction {position} ({made_by}); request body diff:"
            )
            lines += ["    " + line for line in body_diff(recorded.request, live)]
        if self.missing_sample is not None:
            lines.append(f"  {self.missing_sample}")
        if self.seed is not None:
            lines += step_alone_advice(step, self.record_command, self.path, self.seed)
        else:
            lines += ["To record it, run:", f"  {self.record_command}"]
        return "\n".join(lines)

    def _prompt_lines(self, step: str | None, current: Mapping[str, str]) -> list[str]:
        """One line per prompt of the step: its version, or how it changed since recording."""
        lines = []
        for name, version in current.items():
            recorded = sorted(
                {
                    i.prompts[name]
                    for i in self._interactions
                    if i.step == step and i.prompts.get(name, version) != version
                }
            )
            lines += [f"  prompt {name} changed: {old} -> {version}" for old in recorded]
            if not recorded:
                lines.append(f"  prompt {name}: version {version}")
        return lines


def _latency_order(figure: Latency) -> tuple[int, int]:
    return figure.total_ms, figure.first_byte_ms
