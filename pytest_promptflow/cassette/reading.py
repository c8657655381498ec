"""Reading a recorded run file safely: only a regular file of bounded size, JSON that
is well formed and not nested too deeply, in the recorded run format, or a
CassetteError that names the file and the place.

A file up to 4 MiB is read into models: at once by pydantic when it is plain (nesting
within bounds, counted on its text; no ``NaN``), else part by part, so that a problem
is named precisely. A larger one is walked once, each interaction validated and then
kept as compact JSON (``StoredInteractions``) and parsed again when it is played, so
that replaying thousands of calls costs about the file's size in memory.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import pydantic
import pydantic_core

from pytest_promptflow.cassette.format import (
    FORMAT_VERSION,
    Interaction,
    RecordedRequest,
    RecordedRun,
)
from pytest_promptflow.errors import CassetteError

MAX_RECORDED_RUN_BYTES = 64 * 1024 * 1024
"""Larger files are refused unread: a recorded run is a reviewable text file."""
COMPACT_ABOVE_BYTES = 4 * 1024 * 1024
"""Larger files keep their interactions as compact JSON while they replay: a file of
thousands of calls then costs about its size in memory, not ten times that."""
MAX_NESTING = 200
"""JSON nested deeper than this is refused: no LLM request or answer needs it."""


class StoredInteractions(Sequence[Interaction]):
    """Interactions read from a file, each kept as its compact JSON and parsed again when
    it is asked for: a recorded run of thousands of calls costs about its size in memory
    while it replays, not ten times that as models and dictionaries.

    Items may also be models (a seed's interactions joined to a file's). ``keys``, when
    set, holds the lookup key of each item, computed once as the file was read.
    """

    __slots__ = ("_entries", "keys")

    def __init__(
        self, entries: Iterable[bytes | Interaction] = (), keys: list[str] | None = None
    ) -> None:
        self._entries = list(entries)
        self.keys = keys

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, position: int) -> Interaction: ...

    @overload
    def __getitem__(self, position: slice) -> StoredInteractions: ...

    def __getitem__(self, position: int | slice) -> Interaction | StoredInteractions:
        if isinstance(position, slice):
            keys = self.keys[position] if self.keys is not None else None
            return StoredInteractions(self._entries[position], keys)
        entry = self._entries[position]
        if isinstance(entry, Interaction):
            return entry
        return Interaction.model_validate_json(entry)

    def __iter__(self) -> Iterator[Interaction]:
        for position in range(len(self._entries)):
            yield self[position]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StoredInteractions({len(self)} interactions)"

    def joined(self, more: Sequence[Interaction]) -> StoredInteractions:
        """These interactions, then ``more`` (kept as they are)."""
        return StoredInteractions([*self._entries, *more])


def request_keys(
    interactions: Sequence[Interaction], key_of: Callable[[RecordedRequest], str]
) -> list[str]:
    """The lookup key of each interaction's request: those computed as the file was read,
    else ``key_of`` of each."""
    if isinstance(interactions, StoredInteractions) and interactions.keys is not None:
        return list(interactions.keys)
    return [key_of(interaction.request) for interaction in interactions]


ADVICE = "fix it, or delete it and record again with --promptflow-record=new"


def read_recorded_run(
    path: Path, request_key: Callable[[RecordedRequest], str] | None = None
) -> RecordedRun | None:
    """The recorded run at ``path``, None when there is none.

    Only a regular file (not a symbolic link, a device or a pipe) of at most
    MAX_RECORDED_RUN_BYTES is read; anything wrong with it raises CassetteError naming
    the file and the place. A file larger than COMPACT_ABOVE_BYTES is read into
    ``StoredInteractions`` (holding the key of each request by ``request_key`` when it
    is given); a smaller one into models, which replay without being parsed again.
    """
    data = _read_regular_file(path)
    if data is None:
        return None
    if len(data) > COMPACT_ABOVE_BYTES:
        walk = _DocumentWalk(_decoded(path, data), request_key)
        del data  # a large file is held once at a time: as bytes, then as text
        run = _read_as_written(path, walk)
        if run is not None:
            return run
        del walk
        data = _read_again(path)
    else:
        run = _validated_at_once(data)
        if run is not None:
            return run
    document = _parse_json(path, _decoded(path, data))
    del data
    _check_format_number(path, document)
    run = _validated_one_by_one(document)
    if run is not None:
        return run
    # Something in it does not match the format: read it again, whole, to say where.
    document = _parse_json(path, _decoded(path, _read_again(path)))
    try:
        return RecordedRun.model_validate(document)
    except pydantic.ValidationError as error:
        first = error.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"])
        raise CassetteError(
            f"cassette {path} does not match the recorded run format at {location}: "
            f"{first['msg']} ({error.error_count()} problem(s)); {ADVICE}"
        ) from None
    except (RecursionError, ValueError, TypeError) as error:
        raise CassetteError(
            f"cassette {path} cannot be read: {type(error).__name__}; {ADVICE}"
        ) from None


def _read_again(path: Path) -> bytes:
    """The file read once more, after a first reading was let go."""
    data = _read_regular_file(path)
    if data is None:
        raise CassetteError(f"cassette {path} was deleted while it was read; run the tests again")
    return data


def _validated_at_once(data: bytes) -> RecordedRun | None:
    """The recorded run of a plain file, pydantic reading its JSON itself; None when the
    careful reading below must look at it: nesting deeper than MAX_NESTING, ``NaN`` or
    ``Infinity`` anywhere (JSON has no such numbers, pydantic would read them), another
    format number, or anything invalid. What this accepts, the careful reading accepts
    the same."""
    if b"NaN" in data or b"Infinity" in data:
        return None
    if data.count(b"{") + data.count(b"[") > MAX_NESTING and _nesting(data) > MAX_NESTING:
        return None
    try:
        run = RecordedRun.model_validate_json(data)
    except (pydantic.ValidationError, RecursionError, ValueError):
        return None
    as_written = "format" in run.model_fields_set and run.format == FORMAT_VERSION
    return run if as_written else None


_NOT_BRACKETS_OR_QUOTES = bytes(range(256)).translate(None, b'"[]{}')
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_DEPTH_CHANGE = {ord("["): 1, ord("]"): -1}


def _nesting(data: bytes) -> int:
    """How deeply the JSON text ``data`` nests, counted from its text alone: the most
    brackets open at once once strings are taken out, in time linear in its length.
    Meaningless for text that is not JSON, which pydantic refuses anyway."""
    if b"\\" in data:
        # Escaped backslashes first, so that what is left of an escaped quote is its own.
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = data.translate(_BRACES_AS_BRACKETS, _NOT_BRACKETS_OR_QUOTES).replace(b'""', b"")
    # Quotes now alternate: what lies between an opening and a closing one is in a string.
    brackets = b"".join(kept.split(b'"')[::2]) if b'"' in kept else kept
    return max(itertools.accumulate(map(_DEPTH_CHANGE.__getitem__, brackets)), default=0)


def _validated_one_by_one(document: dict[str, Any]) -> RecordedRun | None:
    """The recorded run of a well-formed document of this format, None when anything in
    it is wrong.

    Each interaction's dictionaries are released as soon as it is validated, so that a
    file is not held twice, as JSON and as models, at once.
    """
    items = document.get("interactions", [])
    if not isinstance(items, list):
        return None
    try:
        run = RecordedRun.model_validate({**document, "interactions": []})
        interactions = []
        for position, item in enumerate(items):
            interactions.append(Interaction.model_validate(item))
            items[position] = None
    except (pydantic.ValidationError, RecursionError, ValueError, TypeError):
        return None
    run.interactions = interactions
    return run


def _decoded(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CassetteError(
            f"cassette {path} cannot be read: it is not UTF-8 text (byte {error.start}); {ADVICE}"
        ) from None


def _read_as_written(path: Path, walk: _DocumentWalk) -> RecordedRun | None:
    """The recorded run of a well-formed file, each interaction validated and then kept
    as compact JSON, so that the file is never held as dictionaries all at once; None
    when anything in it is unusual."""
    if _SURROGATE_ESCAPE.search(walk.text) is not None:
        return None
    try:
        document = walk.document()
    except (_Unusual, IndexError, RecursionError, ValueError, TypeError):
        return None
    if walk.brackets > MAX_NESTING and _nested_too_deeply(document):
        return None
    _check_format_number(path, document)
    try:
        run = RecordedRun.model_validate(document)
    except (pydantic.ValidationError, RecursionError, ValueError, TypeError):
        return None
    run.interactions = StoredInteractions(walk.entries, walk.keys)
    return run


class _Unusual(Exception):
    """The text is not as this version writes it; reading it whole says why."""


_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _DocumentWalk:
    """One pass over a recorded run's text: its fields, and its interactions one by one.

    The standard library's decoder reads every value; only the top-level object and the
    interactions array are walked here, to know where each interaction ends. The text
    is let go as soon as it is read."""

    def __init__(self, text: str, request_key: Callable[[RecordedRequest], str] | None) -> None:
        self.text = text
        self.request_key = request_key
        self.decoder = json.JSONDecoder(parse_constant=_no_constant)
        self.entries: list[bytes] = []
        self.keys: list[str] | None = [] if request_key is not None else None
        self.brackets = 0
        """Brackets outside the interactions: more than MAX_NESTING asks for a closer look."""

    def document(self) -> dict[str, Any]:
        """The fields of the document but its interactions, which ``entries`` holds."""
        try:
            return self._object()
        finally:
            self.text = ""

    def _object(self) -> dict[str, Any]:
        text = self.text
        document: dict[str, Any] = {}
        position = self._expect(self._skip(0), "{")
        while text[position] != "}":
            name, position = self.decoder.raw_decode(text, position)
            if type(name) is not str:
                raise _Unusual
            position = self._expect(self._skip(position), ":")
            if name == "interactions" and text[position] == "[":
                position = self._interactions(position)
                document.pop(name, None)
            else:
                start = position
                document[name], position = self.decoder.raw_decode(text, position)
                self.brackets += _brackets(text, start, position)
            position = self._skip(position)
            if text[position] == ",":
                position = self._skip(position + 1)
            elif text[position] != "}":
                raise _Unusual
        if self._skip(position + 1) != len(text):
            raise _Unusual
        return document

    def _interactions(self, position: int) -> int:
        text = self.text
        self.entries.clear()
        if self.keys is not None:
            self.keys.clear()
        position = self._skip(position + 1)
        if text[position] == "]":
            return position + 1
        while True:
            start = position
            item, position = self.decoder.raw_decode(text, position)
            # An interaction sits two levels down: in the document, in its interactions.
            if _brackets(text, start, position) > MAX_NESTING - 2 and _nested_too_deeply(
                item, MAX_NESTING - 2
            ):
                raise _Unusual
            interaction = Interaction.model_validate(item)
            self.entries.append(pydantic_core.to_json(item))
            if self.keys is not None and self.request_key is not None:
                self.keys.append(self.request_key(interaction.request))
            position = self._skip(position)
            if text[position] == "]":
                return position + 1
            position = self._expect(position, ",")

    def _skip(self, position: int) -> int:
        match = _WHITESPACE.match(self.text, position)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    def _expect(self, position: int, character: str) -> int:
        if self.text[position] != character:
            raise _Unusual
        return self._skip(position + 1)


def _check_format_number(path: Path, document: Any) -> None:
    version = document.get("format") if isinstance(document, dict) else None
    # True and 1.0 equal 1 in Python, but are not the format number.
    if type(version) is not int or version != FORMAT_VERSION:
        raise CassetteError(
            f"cassette {path} has format {version!r}, but this pytest-promptflow reads "
            f"format {FORMAT_VERSION} (the integer); {ADVICE}"
        )


def _read_regular_file(path: Path) -> bytes | None:
    """The bytes of a regular file of at most MAX_RECORDED_RUN_BYTES, None when absent."""
    try:
        status = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise CassetteError(f"cassette {path} cannot be read: {error.strerror}") from None
    if stat.S_ISLNK(status.st_mode):
        raise CassetteError(
            f"cassette {path} is a symbolic link; only regular files are read as recorded "
            f"runs: replace it with the file itself, or delete it"
        )
    not_regular = (
        f"cassette {path} is not a regular file; only regular files are read as recorded "
        "runs: delete it"
    )
    if not stat.S_ISREG(status.st_mode):
        raise CassetteError(not_regular)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise CassetteError(f"cassette {path} cannot be read: {error.strerror}") from None
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):  # replaced since lstat
            raise CassetteError(not_regular)
        data = _read_at_most(descriptor, opened.st_size, MAX_RECORDED_RUN_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_RECORDED_RUN_BYTES:
        raise CassetteError(
            f"cassette {path} is larger than {MAX_RECORDED_RUN_BYTES // (1024 * 1024)} MiB, "
            f"the most a recorded run may be; {ADVICE}"
        )
    return data


def _read_at_most(descriptor: int, expected: int, limit: int) -> bytes:
    """Up to ``limit`` bytes of an open file whose size was ``expected``.

    Read in chunks of the size the file had, so that a small file does not cost a
    buffer of ``limit`` bytes, and a file that grew meanwhile is still read whole."""
    chunks: list[bytes] = []
    read = 0
    while read < limit:
        chunk = os.read(descriptor, min(max(expected - read, 65536), limit - read))
        if not chunk:
            break
        chunks.append(chunk)
        read += len(chunk)
    return b"".join(chunks)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(path: Path, text: str) -> Any:
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as error:
        raise CassetteError(
            f"cassette {path} is not valid JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg}); {ADVICE}"
        ) from None
    except RecursionError:
        raise CassetteError(
            f"cassette {path} is nested too deeply to read (more than {MAX_NESTING} levels); "
            f"{ADVICE}"
        ) from None
    except ValueError as error:
        # A number of thousands of digits, or NaN and Infinity, which JSON does not have.
        found = re.search(r"\d{1000,}|NaN|-?Infinity", text)
        where = f"line {text.count(chr(10), 0, found.start()) + 1}" if found else "somewhere"
        raise CassetteError(
            f"cassette {path} holds a number that cannot be read at {where} ({error}); {ADVICE}"
        ) from None
    problem = _structure_problem(document, text)
    if problem is not None:
        raise CassetteError(f"cassette {path} {problem}; {ADVICE}")
    return document


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""The only way a string read from UTF-8 text can hold a lone surrogate: a JSON escape."""


def _structure_problem(document: Any, text: str) -> str | None:
    """Nesting deeper than MAX_NESTING, or a string no file or request can hold.

    Most files have neither: one look at the text and one at the nesting says so, and
    only then is the document walked again to name the place."""
    if _SURROGATE_ESCAPE.search(text) is None and (
        _brackets(text) <= MAX_NESTING or not _nested_too_deeply(document)
    ):
        return None
    return _structure_problem_at(document)


def _brackets(text: str, start: int = 0, end: int | None = None) -> int:
    """The opening brackets in ``text[start:end]``: nesting deeper than MAX_NESTING needs
    more than MAX_NESTING of them."""
    return text.count("{", start, end) + text.count("[", start, end)


def _nested_too_deeply(document: Any, limit: int = MAX_NESTING) -> bool:
    level = [document]
    for _ in range(limit):
        containers: list[Any] = []
        for value in level:
            items = value.values() if type(value) is dict else value if type(value) is list else ()
            containers += [item for item in items if type(item) in (dict, list)]
        if not containers:
            return False
        level = containers
    return True


def _structure_problem_at(document: Any) -> str | None:
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, place, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"is nested more than {MAX_NESTING} levels deep at {place}"
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{place}.{key}" if place else key
                if _has_lone_surrogate(key) or (
                    isinstance(item, str) and _has_lone_surrogate(item)
                ):
                    return f"holds an invalid Unicode character at {where}"
                stack.append((item, where, depth + 1))
        elif isinstance(value, list):
            for position, item in enumerate(value):
                where = f"{place}[{position}]"
                if isinstance(item, str) and _has_lone_surrogate(item):
                    return f"holds an invalid Unicode character at {where}"
                stack.append((item, where, depth + 1))
    return None


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_recorded_run_at(
    path: Path,
    legacy_paths: tuple[Path, ...],
    *,
    test: str,
    case: str | None,
    request_key: Callable[[RecordedRequest], str] | None = None,
) -> tuple[Path, RecordedRun | None]:
    """The recorded run of a test case and the file it came from: ``path``, else a file
    of an older naming that holds this very test case (on a case-insensitive file
    system, ``Comet.json`` may open ``comet.json``)."""
    run = read_recorded_run(path, request_key)
    if run is not None:
        return path, run
    for legacy in legacy_paths:
        run = read_recorded_run(legacy, request_key)
        if run is not None and run.case == case and _same_test(run.test, test):
            return legacy, run
    return path, None


def _same_test(recorded: str, test: str) -> bool:
    """Node ids agree from the module on, whatever folder pytest ran from."""
    return recorded == test or recorded.endswith("/" + test) or test.endswith("/" + recorded)
