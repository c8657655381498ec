"""The frameworks that require openai<3: instructor, LlamaIndex, Mirascope.

A generated project runs in this process, and the modules first imported during a run are
forgotten after it. instructor resolves ``from_openai`` on first use and caches it on its
package; with its provider modules forgotten, the cached function looks its modes up in a
registry imported anew, where nothing registered them (``ModeError: Invalid mode
'tool_call'``). So its OpenAI provider is loaded here, once, when instructor is installed.
"""

from __future__ import annotations

import contextlib

with contextlib.suppress(ImportError):
    import instructor
    import openai

    instructor.from_openai(openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1"))
