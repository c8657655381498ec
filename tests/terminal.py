"""A command driven in a real pseudo-terminal, as a person at a keyboard drives it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pyte

COLUMNS, LINES = 120, 40
_ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def drive(
    arguments: Sequence[str],
    keys: Sequence[str],
    cwd: Path,
    prompt: str,
    timeout: float = 60.0,
    typed_ahead: str = "",
    final_screen: list[str] | None = None,
) -> str:
    """Run ``arguments`` on a pseudo-terminal in ``cwd``, pressing each of ``keys`` once
    ``prompt`` has been shown one more time, and return everything it printed (without
    colour codes) once it exits. ``typed_ahead`` is typed as soon as the command starts,
    before it shows anything; ``final_screen``, when given, receives the lines the terminal (a
    VT100 emulator of its size) shows when the command exits."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": str(COLUMNS), "LINES": str(LINES), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, *arguments], stdin=secondary, stdout=secondary, stderr=secondary,
        cwd=cwd, env=env, close_fds=True,
    )  # fmt: skip
    os.close(secondary)
    if typed_ahead:
        os.write(primary, typed_ahead.encode())
    output = b""
    pressed = 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the command ended and closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            shown = _ESCAPES.sub(b"", output).decode("utf-8", "replace").count(prompt)
            if pressed < len(keys) and shown > pressed:
                os.write(primary, keys[pressed].encode())
                pressed += 1
            if process.poll() is not None and not ready:
                break
        else:
            raise TimeoutError(f"{arguments} did not end: {output.decode(errors='replace')}")
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(primary)
    if final_screen is not None:
        screen = pyte.Screen(COLUMNS, LINES)
        pyte.ByteStream(screen).feed(output)
        final_screen += [line.rstrip() for line in screen.display]
    return _ESCAPES.sub(b"", output).decode("utf-8", "replace").replace("\r\n", "\n")
