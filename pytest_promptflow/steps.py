"""``@step``: a user function whose every call is checked at its boundary and recorded.

A parameter is *data* when its annotation has a JSON form (a pydantic model, a
dataclass, ``str``, ``list[int]``, a ``Literal``...). Data is validated on the way in and
recorded into the active run. Any other parameter -- a client object, a callback, an
unannotated one -- is passed through untouched and never recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import importlib
import inspect
import sys
import time
import typing
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MethodType
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

import pydantic
import pydantic_core

from pytest_promptflow.errors import PromptflowError, StepContractError
from pytest_promptflow.fingerprint import schema_fingerprint
from pytest_promptflow.prompts import Prompt
from pytest_promptflow.trace import (
    JsonValue,
    Run,
    StepCall,
    StepContext,
    active_run,
    ended,
    entered,
    follows,
)

P = ParamSpec("P")
R = TypeVar("R")

Check = Callable[..., object]
"""A property check: it names, as parameters, any of the step's inputs and ``output``."""

Metric = Callable[[Any, Any], object]
"""A measure of a step's output against its case's expected values:
``fn(output, expected) -> bool | float`` (0 to 1)."""

OUTPUT_PARAMETER = "output"


_current_step: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "promptflow_current_step", default=None
)


def current_step() -> StepContext | None:
    """The innermost step executing in this context, or None."""
    return _current_step.get()


class UntaggedRequestWarning(UserWarning):
    """An HTTP request reached the recorder from outside any step while several steps of
    its run were executing, so it cannot be told which step made it."""


COPY_CONTEXT_FIX = "executor.submit(contextvars.copy_context().run, fn, *args)"


def request_step(run: Run, *, warn: bool = True) -> StepContext | None:
    """The step an HTTP request of ``run`` belongs to.

    In the step's own context that is the current step. A thread started without the
    context (a plain ``ThreadPoolExecutor``) has none, so its request belongs to the step
    of ``run`` that is executing, when exactly one is (with the steps it is nested in);
    when several are, it stays untagged and an ``UntaggedRequestWarning`` says why.
    """
    context = _current_step.get()
    if context is not None:
        return context
    executing = list(run.executing)
    innermost = [c for c in executing if not any(other.parent is c for other in executing)]
    if len(innermost) == 1:
        return innermost[0]
    if innermost and warn:
        names = ", ".join(sorted({repr(c.step) for c in innermost}))
        case = f" in case {run.case_id}" if run.case_id else ""
        warnings.warn(
            UntaggedRequestWarning(
                f"an HTTP request was made outside any step{case} while steps {names} were "
                "executing at once, so it is recorded without a step and a miss cannot name "
                "the prompt that changed. It probably comes from a thread that does not "
                f"share the step's context: submit the work with {COPY_CONTEXT_FIX}"
            ),
            stacklevel=2,
        )
    return None


def _json_adapter(annotation: Any) -> pydantic.TypeAdapter[Any] | None:
    """A validator for ``annotation`` when it is data (has a JSON form), else None."""
    if annotation is inspect.Parameter.empty or annotation is Any or annotation is object:
        return None
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
        adapter.json_schema()
    except (
        pydantic.PydanticSchemaGenerationError,
        pydantic.errors.PydanticInvalidForJsonSchema,
        pydantic.PydanticUserError,
    ):
        return None
    return adapter


def _to_json(value: object) -> JsonValue:
    return pydantic_core.to_jsonable_python(value, fallback=repr)


def _readable(error: pydantic.ValidationError, prefix: str) -> list[str]:
    lines = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in (prefix, *detail["loc"]) if part != "")
        lines.append(f"{location}: {detail['msg']} (got {detail.get('input')!r:.80})")
    return lines


@dataclass(frozen=True)
class _BoundCheck:
    name: str
    function: Check
    parameters: tuple[str, ...] | None  # None: takes **kwargs, so everything

    def describe(self) -> str:
        doc = inspect.getdoc(self.function)
        return doc.splitlines()[0].rstrip(".") if doc else self.name


@dataclass(frozen=True)
class UnresolvedAnnotation:
    """An annotation of a step that cannot be evaluated where the step is defined."""

    parameter: str
    annotation: str
    reason: str

    def problem(self, step_name: str, value: object) -> str | None:
        """The error to raise when ``value`` shows the parameter is data, else None."""
        if not _looks_like_data(value):
            return None
        where = (
            "return annotation" if self.parameter == "return" else (f"parameter {self.parameter!r}")
        )
        return (
            f"step {step_name!r}: the {where} {self.annotation!r} cannot be resolved "
            f"({self.reason}), so its value cannot be validated or recorded. Import the "
            "names it uses at module level (not under `if TYPE_CHECKING:`), or annotate it "
            "with a type the module can see, such as a pydantic model, a dataclass or "
            "dict[str, Any]"
        )


def _looks_like_data(value: object) -> bool:
    """Whether a value has a JSON form: then its parameter holds data, not a client."""
    if isinstance(value, str | int | float | bool | list | tuple | dict):
        return True
    return isinstance(value, pydantic.BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


def _resolve_annotations(
    function: Callable[..., Any],
) -> tuple[dict[str, Any], dict[str, UnresolvedAnnotation]]:
    """The annotations of ``function``, resolved one at a time: a name that cannot be
    resolved on one parameter (a library's private type behind a string annotation)
    does not prevent resolving the others."""
    target = inspect.unwrap(function)
    raw = _raw_annotations(target)
    resolved: dict[str, Any] = {}
    unresolved: dict[str, UnresolvedAnnotation] = {}
    for name, annotation in raw.items():
        single = _SingleAnnotation(target, name, annotation)
        try:
            resolved[name] = typing.get_type_hints(single, include_extras=True)[name]
        except Exception as error:
            text = annotation if isinstance(annotation, str) else repr(annotation)
            unresolved[name] = UnresolvedAnnotation(name, text, f"{type(error).__name__}: {error}")
    return resolved, unresolved


def _raw_annotations(function: Callable[..., Any]) -> dict[str, Any]:
    """The annotations as written; from Python 3.14, without evaluating them all at once."""
    try:
        annotationlib = importlib.import_module("annotationlib")
    except ImportError:
        return dict(getattr(function, "__annotations__", None) or {})
    annotations: dict[str, Any] = annotationlib.get_annotations(
        function, format=annotationlib.Format.FORWARDREF
    )
    return annotations


class _SingleAnnotation:
    """One annotation of a function, with the function's globals to resolve it in."""

    def __init__(self, function: Callable[..., Any], name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}
        self.__globals__ = getattr(function, "__globals__", {})


class _KeywordArguments:
    """A call's arguments, all passed by name: what ``_bind`` gives for plain signatures."""

    args: tuple[Any, ...] = ()

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.arguments


_Arguments = _KeywordArguments | inspect.BoundArguments


def _bind(boundary: _Boundary, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Arguments:
    """The arguments of a call by parameter name, defaults applied; ``Signature.bind``
    (which also raises the TypeError of a wrong call) for any other signature or call."""
    names = boundary.plain_names
    if names is not None and not kwargs and len(args) == len(names):
        return _KeywordArguments(dict(zip(names, args, strict=True)))  # every argument by position
    if names is not None and len(args) <= len(names):
        arguments = dict(zip(names, args, strict=False))  # the first len(args) names
        if not kwargs.keys() & arguments.keys():
            arguments.update(kwargs)
            for name, default in boundary.defaults.items():
                arguments.setdefault(name, default)
            if len(arguments) == len(names) and arguments.keys() == set(names):
                return _KeywordArguments({name: arguments[name] for name in names})
    bound = boundary.signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return bound


class _Boundary:
    """The types of a step, resolved at its first call (annotations may be forward refs).

    An annotation that cannot be resolved leaves its parameter unchecked until a call
    shows what it holds: a client object passes through, data is an error that says
    what to write instead.
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        self.signature = inspect.signature(function)
        parameters = self.signature.parameters.values()
        self.plain_names: tuple[str, ...] | None = (
            tuple(p.name for p in parameters)
            if all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
            else None
        )
        """The parameter names, when every parameter can be passed by position or name:
        then a call binds its arguments without ``Signature.bind``."""
        self.defaults = {
            p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty
        }
        hints, unresolved = _resolve_annotations(function)
        self.unresolved = unresolved
        self.inputs: dict[str, pydantic.TypeAdapter[Any]] = {}
        for name, parameter in self.signature.parameters.items():
            annotation = hints.get(name, inspect.Parameter.empty)
            if annotation is not inspect.Parameter.empty:
                # ``*parts: str`` annotates each item; the step receives them all at once.
                if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                    annotation = tuple[annotation, ...]  # type: ignore[valid-type]
                elif parameter.kind is inspect.Parameter.VAR_KEYWORD:
                    annotation = dict[str, annotation]  # type: ignore[valid-type]
            adapter = _json_adapter(annotation)
            if adapter is not None:
                self.inputs[name] = adapter
        self.output_annotation = hints.get("return", Any)
        self.output = _json_adapter(self.output_annotation)
        self.output_schema = schema_fingerprint(self.output) if self.output is not None else None

    def unresolved_problems(self, step_name: str, values: Mapping[str, object]) -> list[str]:
        """Errors for the unresolved annotations whose values turn out to be data."""
        problems = []
        for name, value in values.items():
            unresolved = self.unresolved.get(name)
            problem = unresolved.problem(step_name, value) if unresolved else None
            if problem is not None:
                problems.append(problem)
        return problems


class Step(Generic[P, R]):
    """A decorated step. Call it exactly like the function it wraps."""

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        prompts: Sequence[Prompt] = (),
        checks: Iterable[Check] = (),
        metrics: Iterable[Metric] = (),
    ) -> None:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            raise TypeError(f"@step cannot wrap the generator {function.__qualname__}")
        self.function = function
        self.name = name or function.__name__
        self.prompts = tuple(prompts)
        self.prompt_versions: Mapping[str, str] = {p.name: p.version for p in self.prompts}
        self._call_prompts = dict(self.prompt_versions)
        """The prompt versions every call of this step records: one dict, shared, never changed."""
        self.checks = tuple(self._bind_check(check) for check in checks)
        self.metrics: tuple[Metric, ...] = tuple(metrics)
        """Measures of the output against a case's expected values: ``fn(output,
        expected) -> bool | float``, scored on every call whose case expects something of
        this step."""
        for metric in self.metrics:
            if not callable(metric):
                raise TypeError(
                    f"step {self.name!r}: metrics are callables fn(output, expected) -> bool "
                    f"or a number from 0 to 1, not {metric!r}"
                )
        self.is_async = inspect.iscoroutinefunction(function)
        self._resolved: _Boundary | None = None
        functools.update_wrapper(self, function)
        _known_steps.setdefault(self.name, weakref.WeakSet()).add(self)

    def _bind_check(self, check: Check) -> _BoundCheck:
        check_name = getattr(check, "__name__", repr(check))
        parameters = inspect.signature(check).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return _BoundCheck(check_name, check, None)
        known = set(inspect.signature(self.function).parameters) | {OUTPUT_PARAMETER}
        wanted = tuple(p.name for p in parameters)
        unknown = [p for p in wanted if p not in known]
        if unknown:
            raise TypeError(
                f"check {check_name} of step {self.name!r} asks for {', '.join(unknown)}, "
                f"but the step only has {', '.join(sorted(known))}"
            )
        return _BoundCheck(check_name, check, wanted)

    @property
    def boundary(self) -> _Boundary:
        if self._resolved is None:
            self._resolved = _Boundary(self.function)
        return self._resolved

    @property
    def input_types(self) -> Mapping[str, pydantic.TypeAdapter[Any]]:
        """Validators of the data parameters, by name."""
        return self.boundary.inputs

    @property
    def output_type(self) -> pydantic.TypeAdapter[Any] | None:
        return self.boundary.output

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.is_async:
            return cast(R, self._call_async(args, kwargs))
        call, arguments, token = self._enter(args, kwargs)
        started = time.perf_counter()
        try:
            result = self.function(*arguments.args, **arguments.kwargs)
        except pydantic.ValidationError as error:
            # The step could not build its output, most often from the model's reply.
            self._break_contract(call, "output", _readable(error, OUTPUT_PARAMETER))
        except BaseException as error:
            self._fail(call, error)
            raise
        finally:
            self._leave(token)
        return cast(R, self._exit(call, arguments, result, started))

    async def _call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        call, arguments, token = self._enter(args, kwargs)
        started = time.perf_counter()
        try:
            awaitable = cast(Callable[..., Awaitable[object]], self.function)
            result = await awaitable(*arguments.args, **arguments.kwargs)
        except pydantic.ValidationError as error:
            # The step could not build its output, most often from the model's reply.
            self._break_contract(call, "output", _readable(error, OUTPUT_PARAMETER))
        except BaseException as error:
            self._fail(call, error)
            raise
        finally:
            self._leave(token)
        return self._exit(call, arguments, result, started)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        # Steps defined as methods bind like functions do.
        return self if instance is None else MethodType(self, instance)

    def _enter(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[StepCall | None, _Arguments, contextvars.Token[StepContext | None]]:
        boundary = self.boundary
        arguments = _bind(boundary, args, kwargs)
        if boundary.unresolved:
            unresolved = boundary.unresolved_problems(self.name, arguments.arguments)
            if unresolved:
                raise PromptflowError("\n".join(unresolved))
        problems: list[str] = []
        for name, adapter in boundary.inputs.items():
            try:
                arguments.arguments[name] = adapter.validate_python(arguments.arguments[name])
            except pydantic.ValidationError as error:
                problems += _readable(error, name)
        run = active_run()
        parent = _current_step.get()
        call = None
        if run is not None:
            call = run.begin_call(
                self.name,
                parent.call_index if parent is not None else None,
                {name: _to_json(arguments.arguments[name]) for name in boundary.inputs},
                self._call_prompts,
                boundary.output_schema,
            )
            if self.name not in run.output_types:
                run.output_types[self.name] = boundary.output_annotation
                run.metrics[self.name] = self.metrics
                run.prompt_sources.update({p.version: p.source for p in self.prompts})
            call.after, call.forked, call.started = follows(run.scope_of(call))
        if problems:
            self._break_contract(call, "input", problems)
        context = StepContext(self.name, self.prompt_versions, call.index if call else None, parent)
        if run is not None:
            run.executing.append(context)
        if call is not None:
            entered(call)
        return call, arguments, _current_step.set(context)

    @staticmethod
    def _leave(token: contextvars.Token[StepContext | None]) -> None:
        context = _current_step.get()
        _current_step.reset(token)
        run = active_run()
        if run is not None and context is not None:
            # list.remove is atomic: steps of the run may end in other threads meanwhile.
            with contextlib.suppress(ValueError):
                run.executing.remove(context)
            if context.call_index is not None and context.call_index < len(run.calls):
                call = run.calls[context.call_index]
                ended(run.scope_of(call), call)

    def _exit(
        self,
        call: StepCall | None,
        arguments: _Arguments,
        result: object,
        started: float,
    ) -> object:
        if call is not None:
            call.duration_s = time.perf_counter() - started
        adapter = self.boundary.output
        if "return" in self.boundary.unresolved:
            unresolved = self.boundary.unresolved_problems(self.name, {"return": result})
            if unresolved:
                raise PromptflowError("\n".join(unresolved))
        if adapter is not None:
            try:
                result = adapter.validate_python(result)
            except pydantic.ValidationError as error:
                if call is not None:
                    call.output = _to_json(result)
                self._break_contract(call, "output", _readable(error, OUTPUT_PARAMETER))
        if call is not None:
            call.output = adapter.dump_python(result, mode="json") if adapter else _to_json(result)
        for check in self.checks:
            self._run_check(check, call, arguments, result)
        return result

    def _run_check(
        self,
        check: _BoundCheck,
        call: StepCall | None,
        arguments: _Arguments,
        output: object,
    ) -> None:
        values = {**arguments.arguments, OUTPUT_PARAMETER: output}
        wanted = check.parameters if check.parameters is not None else tuple(values)
        try:
            verdict = check.function(**{name: values[name] for name in wanted})
        except Exception as error:
            message = str(error) or check.describe()
            self._break_contract(
                call, f"check {check.name}", [f"{type(error).__name__}: {message}"]
            )
        if verdict is False:
            self._break_contract(
                call, f"check {check.name}", [f"{check.describe()}: returned False"]
            )

    def _break_contract(self, call: StepCall | None, boundary: str, problems: list[str]) -> None:
        run = active_run()
        error = StepContractError(
            self.name, boundary, problems, case=run.case_id if run is not None else None
        )
        if call is not None:
            call.contract_broken = True
            call.error = str(error)
        raise error

    def _fail(self, call: StepCall | None, error: BaseException) -> None:
        if call is not None and call.error is None:
            call.error = f"{type(error).__name__}: {error}"

    def __repr__(self) -> str:
        return f"<step {self.name!r}>"


_known_steps: dict[str, weakref.WeakSet[Step[..., Any]]] = {}
"""Every step defined so far, by name, so that tests can name a step."""


def find_step(name: str, namespace: Mapping[str, Any] | None = None) -> Step[..., Any] | None:
    """The step called ``name``: first among the steps in ``namespace`` (a test module's
    globals, holding what it imported), then among all; an error if that is ambiguous."""
    local = {id(v): v for v in (namespace or {}).values() if isinstance(v, Step) and v.name == name}
    if len(local) == 1:
        return next(iter(local.values()))
    found = list(local.values()) or list(_known_steps.get(name, ()))
    if len(found) > 1:
        places = ", ".join(
            sorted(f"{s.function.__module__}.{s.function.__qualname__}" for s in found)
        )
        raise PromptflowError(f"several steps are named {name!r} ({places}); pass the step itself")
    return found[0] if found else None


def steps_defined_under(root: Path) -> bool:
    """Whether a loaded module under ``root`` (a project) defines a step."""
    for steps in _known_steps.values():
        for defined in list(steps):
            module = sys.modules.get(defined.function.__module__)
            source = getattr(module, "__file__", None)
            if source is not None and Path(source).resolve().is_relative_to(root.resolve()):
                return True
    return False


def step_output(name: str, namespace: Mapping[str, Any] | None = None) -> tuple[Any] | None:
    """The output annotation of the step called ``name`` (in a 1-tuple), None when no
    step has that name; found as ``find_step`` finds it."""
    found = find_step(name, namespace)
    return (found.boundary.output_annotation,) if found is not None else None


def known_step_names() -> list[str]:
    return sorted(name for name, steps in _known_steps.items() if len(steps))


@overload
def step(function: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    prompt: Prompt | Sequence[Prompt] | None = None,
    checks: Iterable[Check] = (),
    metrics: Iterable[Metric] = (),
) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    prompt: Prompt | Sequence[Prompt] | None = None,
    checks: Iterable[Check] = (),
    metrics: Iterable[Metric] = (),
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Declare a chain step: ``@step`` or ``@step(name=..., prompt=..., checks=[...],
    metrics=[...])``."""
    prompts: Sequence[Prompt]
    if prompt is None:
        prompts = ()
    elif isinstance(prompt, Prompt):
        prompts = (prompt,)
    else:
        prompts = tuple(prompt)
    check_list = list(checks)
    metric_list = list(metrics)

    def decorate(target: Callable[P, R]) -> Step[P, R]:
        return Step(target, name=name, prompts=prompts, checks=check_list, metrics=metric_list)

    return decorate(function) if function is not None else decorate
