"""Hypothesis strategies for step inputs and model replies, and ready-made properties.

Generated inputs respect the constraints the pydantic types declare (patterns, lengths,
bounds, literals, nested models, list sizes, optional fields), and replies come in the
shapes a model really sends: valid JSON, fenced, wrapped in prose, cut short, with a
field of the wrong type or a required field missing. The properties take one line::

    from hypothesis import given
    from pytest_promptflow import strategies

    @given(inputs=strategies.inputs(classify))
    def test_the_prompt_reads_every_field(inputs):
        strategies.assert_prompt_renders(classify, inputs, categories=CATEGORIES)

    @given(inputs=strategies.inputs(classify), reply=strategies.replies(classify))
    def test_any_reply_parses_or_breaks_the_contract(inputs, reply):
        strategies.assert_parses_or_rejects(classify, reply, **inputs, client=CLIENT)

Neither property needs a fixture or the network: the step's model requests are answered
in-process, and any other HTTP request fails with ``NetworkBlockedError``.
"""

from __future__ import annotations

from pytest_promptflow.strategies.network import NetworkBlockedError, no_network
from pytest_promptflow.strategies.parses import assert_parses_or_rejects
from pytest_promptflow.strategies.renders import assert_prompt_renders
from pytest_promptflow.strategies.replies import ALL_SHAPES, Reply, replies
from pytest_promptflow.strategies.schema import UnsatisfiableFieldError, UnsupportedFieldError
from pytest_promptflow.strategies.values import inputs, values

__all__ = [
    "ALL_SHAPES",
    "NetworkBlockedError",
    "Reply",
    "UnsatisfiableFieldError",
    "UnsupportedFieldError",
    "assert_parses_or_rejects",
    "assert_prompt_renders",
    "inputs",
    "no_network",
    "replies",
    "values",
]
