"""``assert_prompt_renders``: a step's prompts render from its inputs and read every field."""

from __future__ import annotations

import contextlib
import inspect
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pydantic

from pytest_promptflow.errors import PromptRenderError
from pytest_promptflow.strategies.network import no_network
from pytest_promptflow.strategies.values import AnyStep


class _Reads:
    """The field paths a template read, and those it read whole (printed, dumped...)."""

    def __init__(self) -> None:
        self.fields: set[str] = set()
        self.whole: set[str] = set()


class _ModelProxy:
    """A pydantic model as a template sees it, noting every field the template reads."""

    __slots__ = ("_pf_model", "_pf_path", "_pf_reads")

    _pf_model: pydantic.BaseModel
    _pf_path: str
    _pf_reads: _Reads

    def __init__(self, model: pydantic.BaseModel, path: str, reads: _Reads) -> None:
        object.__setattr__(self, "_pf_model", model)
        object.__setattr__(self, "_pf_path", path)
        object.__setattr__(self, "_pf_reads", reads)

    def __getattr__(self, name: str) -> Any:
        model, path, reads = self._pf_model, self._pf_path, self._pf_reads
        if name in type(model).model_fields:
            reads.fields.add(f"{path}.{name}")
            return _watched(getattr(model, name), f"{path}.{name}", reads)
        if name.startswith("__"):
            raise AttributeError(name)
        descriptor = inspect.getattr_static(type(model), name, None)
        if isinstance(descriptor, property) and descriptor.fget is not None:
            # A property reads fields too: let it read them through this proxy.
            with contextlib.suppress(Exception):
                return descriptor.fget(self)
        found = getattr(model, name)
        reads.whole.add(path)
        return found

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key in type(self._pf_model).model_fields:
            return self.__getattr__(key)
        raise TypeError(f"{type(self._pf_model).__name__!r} object is not subscriptable")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a template cannot set {name}")

    def _pf_whole(self) -> pydantic.BaseModel:
        self._pf_reads.whole.add(self._pf_path)
        return self._pf_model

    def __str__(self) -> str:
        return str(self._pf_whole())

    def __repr__(self) -> str:
        return repr(self._pf_whole())

    def __format__(self, spec: str) -> str:
        return format(self._pf_whole(), spec)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._pf_whole())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ModelProxy):
            other = other._pf_whole()
        return self._pf_whole() == other

    def __hash__(self) -> int:
        return hash(self._pf_whole())


_PROXY_CLASSES: dict[type[pydantic.BaseModel], type[_ModelProxy]] = {}


def _proxy_class(model: type[pydantic.BaseModel]) -> type[_ModelProxy]:
    """A proxy class named like the model, so that jinja's messages name the model."""
    if model not in _PROXY_CLASSES:
        _PROXY_CLASSES[model] = type(
            model.__name__, (_ModelProxy,), {"__slots__": (), "__module__": model.__module__}
        )
    return _PROXY_CLASSES[model]


class _ListProxy(list[Any]):
    """A list whose model items note what a template reads of them."""


class _TupleProxy(tuple[Any, ...]):
    """A tuple whose model items note what a template reads of them."""


def _watched(value: Any, path: str, reads: _Reads) -> Any:
    if isinstance(value, pydantic.BaseModel):
        return _proxy_class(type(value))(value, path, reads)
    if isinstance(value, list):
        return _ListProxy(_watched(item, f"{path}[]", reads) for item in value)
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return _TupleProxy(_watched(item, f"{path}[]", reads) for item in value)
    return value


def _leaves(value: Any, path: str) -> set[str]:
    """The field paths of a value that a prompt should read: every field of its models."""
    if isinstance(value, pydantic.BaseModel):
        names = list(type(value).model_fields)
        if not names:
            return {path}
        return set().union(*(_leaves(getattr(value, name), f"{path}.{name}") for name in names))
    if isinstance(value, (list, tuple)) and any(isinstance(v, pydantic.BaseModel) for v in value):
        return set().union(*(_leaves(item, f"{path}[]") for item in value))
    return {path}


def _prefixes(path: str) -> Iterator[str]:
    """``a.b[].c`` -> ``a``, ``a.b``, ``a.b[]``, ``a.b[].c``."""
    for position, character in enumerate(path):
        if character == "." or path.startswith("[]", position):
            yield path[:position]
    yield path
    if path.endswith("[]"):
        yield path[:-2]


def _plain(path: str) -> str:
    return path.replace("[]", "")


def _type_paths(annotation: Any, path: str, depth: int = 0) -> set[str]:
    """Every field path an annotation can have, for checking ``unused_ok``."""
    found = {path}
    if depth > 8:
        return found
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _type_paths(typing.get_args(annotation)[0], path, depth)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for name, field in annotation.model_fields.items():
            found |= _type_paths(field.annotation, f"{path}.{name}", depth + 1)
        return found
    for argument in typing.get_args(annotation):
        found |= _type_paths(argument, path, depth + 1)
    return found


def assert_prompt_renders(
    step: AnyStep,
    inputs: Mapping[str, Any],
    /,
    *,
    unused_ok: Iterable[str] = (),
    **extra_variables: Any,
) -> None:
    """Render every prompt of ``step`` with its inputs; each must render, and together
    they must read every field of every data input.

    The data inputs are passed as variables of the same names, plus ``extra_variables``
    (the constants the step gives its template, such as ``categories=CATEGORIES``). A
    field the prompts are meant to leave out is named in ``unused_ok``
    (``{"problem.sentiment"}``; a parameter or a model field covers what is below it).
    """
    if not step.prompts:
        raise ValueError(f"step {step.name!r} declares no prompt; pass prompt= to @step")
    adapters = step.input_types
    allowed = {_plain(path) for path in unused_ok}
    hints = _annotations(step)
    known = {_plain(path) for name in adapters for path in _type_paths(hints.get(name), name)}
    for path in sorted(allowed - known):
        raise ValueError(
            f"unused_ok names {path!r}, which is not a data input of step {step.name!r} "
            f"or one of their fields; they are: {', '.join(sorted(known))}"
        )
    data = {
        name: adapter.validate_python(inputs[name])
        for name, adapter in adapters.items()
        if name in inputs
    }
    variables = {**inputs, **extra_variables, **data}
    reads = _Reads()
    labels = [prompt.name for prompt in step.prompts]
    with no_network():
        for prompt in step.prompts:
            rendered = _render(step, prompt.name, prompt.render, variables)
            watched = {name: _watched(value, name, reads) for name, value in data.items()}
            try:
                tracked = prompt.render(**{**variables, **watched})
            except Exception:
                tracked = None
            if tracked != rendered:
                # The template does something the proxies do not copy: trust it to
                # read all it was given rather than report false omissions.
                reads.whole.update(data.keys() & prompt.variables)
    used = set().union(*(prompt.variables for prompt in step.prompts))
    never = [name for name in data if name not in used and name not in allowed]
    unread = [
        leaf
        for name in data
        if name in used
        for leaf in sorted(_leaves(data[name], name))
        if leaf != name
        and leaf not in reads.fields
        and not any(p in reads.whole for p in _prefixes(leaf))
        and not any(_plain(p) in allowed for p in _prefixes(leaf))
    ]
    if never or unread:
        problems = [f"input {name!r} is never read" for name in never]
        problems += [f"field {leaf!r} is never read" for leaf in unread]
        missing = ", ".join(repr(_plain(path)) for path in dict.fromkeys(never + unread))
        raise AssertionError(
            f"step {step.name!r}: its prompts ({', '.join(labels)}) do not show the model "
            "all of its inputs:\n  - "
            + "\n  - ".join(problems)
            + "\nIf the model needs it, use it in a template; if it is left out on purpose, "
            f"say so: assert_prompt_renders(..., unused_ok={{{missing}}})"
        )


def _annotations(step: AnyStep) -> dict[str, Any]:
    try:
        return typing.get_type_hints(step.function, include_extras=True)
    except Exception:
        return {}


def _render(
    step: AnyStep, prompt: str, render: Callable[..., str], variables: Mapping[str, Any]
) -> str:
    try:
        return render(**variables)
    except PromptRenderError as error:
        hint = ""
        if error.variable is not None and error.variable not in step.input_types:
            hint = (
                f"\nIf {error.variable!r} is a constant the step passes to its template, pass "
                f"it too: assert_prompt_renders(step, inputs, {error.variable}=...)"
            )
        raise AssertionError(
            f"step {step.name!r}: prompt {prompt!r} does not render: {error}{hint}"
        ) from error
    except Exception as error:
        raise AssertionError(
            f"step {step.name!r}: prompt {prompt!r} does not render: "
            f"{type(error).__name__}: {error}"
        ) from error
