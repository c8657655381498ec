"""Hypothesis strategies for step inputs and model replies, and the ready-made properties."""

from __future__ import annotations

import contextlib
import decimal
import enum
import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import openai
import pytest
import requests
from anthropic import Anthropic
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample
from openai import AsyncOpenAI, OpenAI
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pytest_httpserver import HTTPServer

from pytest_promptflow import Prompt, Step, step
from pytest_promptflow.strategies import (
    ALL_SHAPES,
    NetworkBlockedError,
    Reply,
    UnsupportedFieldError,
    assert_parses_or_rejects,
    assert_prompt_renders,
    inputs,
    no_network,
    replies,
    values,
)

# Without the explain phase, which replays a failure hundreds of times to annotate it.
QUICK_PHASES = (Phase.explicit, Phase.generate, Phase.shrink)
FAST = settings(
    max_examples=25,
    deadline=None,
    database=None,
    phases=QUICK_PHASES,
)
# For find(): the first example found, not the smallest.
SEARCH = settings(database=None, max_examples=500, phases=[Phase.generate])
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Nothing listens here, and nothing is ever sent: the properties answer in-process.
CLIENT = OpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
ASYNC_CLIENT = AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
CLAUDE = Anthropic(base_url="http://127.0.0.1:9", api_key="unused", max_retries=0)


# --- the types and steps the tests share --------------------------------------------


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    city: str = Field(min_length=2, max_length=20)
    zip_code: str = Field(pattern=r"^\d{5}$")


class Line(BaseModel):
    sku: str = Field(pattern=r"^SKU-[A-Z]{2}\d{3}$")
    quantity: int = Field(ge=1, le=99)


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=r"^[A-Z]{3}-\d{2}$")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=60)
    name: str = Field(min_length=2, max_length=10)
    level: int = Field(ge=1, le=5)
    ratio: float = Field(gt=0, lt=1)
    kind: Literal["new", "repeat", "refund"]
    color: Color
    priority: int | None = Field(default=None, ge=10, le=20)
    tags: list[str] = Field(default_factory=list, max_length=3)
    lines: list[Line] = Field(min_length=1, max_length=4)
    address: Address
    counts: dict[int, str] = Field(default_factory=dict, max_length=3)
    price: decimal.Decimal = Field(max_digits=5, decimal_places=2, ge=0)


class Tree(BaseModel):
    label: str
    children: list[Tree] = Field(default_factory=list, max_length=2)


class Problem(BaseModel):
    product: str = Field(min_length=1, max_length=40)
    symptoms: list[str] = Field(min_length=1, max_length=4)
    customer_goal: str = Field(min_length=5, max_length=80)
    sentiment: Literal["calm", "frustrated", "angry"]


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)
    reason: str = Field(min_length=3, max_length=80)


CATEGORIES = ("billing", "bug", "outage")
CLASSIFY_SOURCE = """\
Classify this support problem.
Product: {{ problem.product }}
Sentiment: {{ problem.sentiment }}
Symptoms:
{% for symptom in problem.symptoms -%}
- {{ symptom }}
{% endfor -%}
Customer goal: {{ problem.customer_goal }}
Categories: {{ categories | join(", ") }}
Answer with a JSON object with "level" (1 to 5) and "reason".
"""
CLASSIFY = Prompt.from_string(CLASSIFY_SOURCE, name="classify")
SYSTEM = Prompt.from_string("You triage support problems.", name="system")


def _prompt_text(problem: Problem) -> str:
    return CLASSIFY.render(problem=problem, categories=CATEGORIES)


@step(prompt=[SYSTEM, CLASSIFY])
def rate(problem: Problem, client: OpenAI) -> Urgency:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": SYSTEM.render()},
            {"role": "user", "content": _prompt_text(problem)},
        ],
    )
    return Urgency.model_validate_json(completion.choices[0].message.content or "")


@step(prompt=CLASSIFY)
def rate_by_hand(problem: Problem, client: OpenAI) -> Urgency:
    """A seeded bug: the reply is read with json.loads and indexing."""
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt_text(problem)}]
    )
    data = json.loads(completion.choices[0].message.content or "")
    return Urgency(level=data["level"], reason=data["reason"])


def _streamed_text(client: OpenAI, problem: Problem, *, with_usage: bool) -> str:
    parts: list[str] = []
    options: dict[str, Any] = {"stream_options": {"include_usage": True}} if with_usage else {}
    with client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": _prompt_text(problem)}],
        stream=True,
        **options,
    ) as stream:
        for chunk in stream:
            if with_usage and not chunk.choices:
                assert chunk.usage is not None
                continue
            # Without include_usage, every chunk has a choice.
            parts.append(chunk.choices[0].delta.content or "")
    return "".join(parts)


@step(prompt=CLASSIFY)
def rate_streamed(problem: Problem, client: OpenAI) -> Urgency:
    return Urgency.model_validate_json(_streamed_text(client, problem, with_usage=True))


@step(prompt=CLASSIFY)
def rate_streamed_without_usage(problem: Problem, client: OpenAI) -> Urgency:
    return Urgency.model_validate_json(_streamed_text(client, problem, with_usage=False))


@step(prompt=CLASSIFY)
def rate_streamed_by_hand(problem: Problem, client: OpenAI) -> Urgency:
    """A seeded bug in a streaming step."""
    data = json.loads(_streamed_text(client, problem, with_usage=True))
    return Urgency(level=data["level"], reason=data["reason"])


@step(prompt=CLASSIFY)
def rate_with_claude(problem: Problem, client: Anthropic) -> Urgency:
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=[{"role": "user", "content": _prompt_text(problem)}],
    )
    block = message.content[0]
    return Urgency.model_validate_json(block.text if block.type == "text" else "")


@step(prompt=CLASSIFY)
def rate_with_claude_streamed(problem: Problem, client: Anthropic) -> Urgency:
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=[{"role": "user", "content": _prompt_text(problem)}],
    ) as stream:
        text = stream.get_final_text()
    return Urgency.model_validate_json(text)


@step(prompt=CLASSIFY)
def rate_with_claude_by_hand(problem: Problem, client: Anthropic) -> Urgency:
    """A seeded bug in an Anthropic step."""
    message = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=300,
        messages=[{"role": "user", "content": _prompt_text(problem)}],
    )
    block = message.content[0]
    return Urgency(**json.loads(block.text if block.type == "text" else "")["urgency"])


@step(prompt=CLASSIFY)
async def rate_async(problem: Problem, client: AsyncOpenAI) -> Urgency:
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt_text(problem)}]
    )
    return Urgency.model_validate_json(completion.choices[0].message.content or "")


def with_prompts(function: Callable[..., Any], *prompts: Prompt) -> Step[..., Any]:
    return Step(function, prompts=prompts)


PROBLEM = Problem(
    product="Acme Vault",
    symptoms=["login fails", "error 500"],
    customer_goal="log in again",
    sentiment="angry",
)


# --- values: constraints ------------------------------------------------------------


@FAST
@given(order=values(Order))
def test_generated_values_respect_every_constraint(order: Order) -> None:
    assert re.fullmatch(r"[A-Z]{3}-\d{2}", order.code)
    assert re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", order.email)
    assert len(order.email) <= 60
    assert 2 <= len(order.name) <= 10
    assert 1 <= order.level <= 5
    assert 0 < order.ratio < 1
    assert order.kind in ("new", "repeat", "refund")
    assert isinstance(order.color, Color)
    assert order.priority is None or 10 <= order.priority <= 20
    assert len(order.tags) <= 3
    assert 1 <= len(order.lines) <= 4
    for line in order.lines:
        assert re.fullmatch(r"SKU-[A-Z]{2}\d{3}", line.sku)
        assert 1 <= line.quantity <= 99
    assert re.fullmatch(r"\d{5}", order.address.zip_code)
    assert 2 <= len(order.address.city) <= 20
    assert all(isinstance(key, int) for key in order.counts)
    assert 0 <= order.price < 1000
    assert order.price == round(order.price, 2)
    # The value is exactly what pydantic accepts: it survives a round trip.
    assert Order.model_validate_json(order.model_dump_json()) == order


def test_optional_and_defaulted_fields_are_sometimes_omitted_and_sometimes_given() -> None:
    strategy = values(Order)
    options = SEARCH

    without_tags = find(strategy, lambda o: "tags" not in o.model_fields_set, settings=options)
    with_tags = find(strategy, lambda o: len(o.tags) > 0, settings=options)
    priority = find(strategy, lambda o: o.priority is not None, settings=options)
    no_priority = find(strategy, lambda o: o.priority is None, settings=options)

    assert without_tags.tags == []
    assert with_tags.tags
    assert priority.priority is not None
    assert 10 <= priority.priority <= 20
    assert no_priority.priority is None


def test_literals_and_enums_come_only_from_their_set_and_cover_it() -> None:
    options = SEARCH
    for kind in ("new", "repeat", "refund"):
        assert find(values(Order), lambda o, k=kind: o.kind == k, settings=options).kind == kind
    assert find(values(Color), lambda c: c is Color.GREEN, settings=options) is Color.GREEN


@FAST
@given(
    numbers=values(Annotated[list[Annotated[int, Field(gt=-3, lt=3)]], Field(min_length=2)]),
    optional=values(Annotated[int, Field(ge=100, le=105)] | None),
    pair=values(tuple[int, Literal["a", "b"]]),
    unique=values(set[Annotated[int, Field(ge=0, le=50)]]),
)
def test_any_annotation_gets_values(
    numbers: list[int], optional: int | None, pair: tuple[int, str], unique: set[int]
) -> None:
    assert len(numbers) >= 2
    assert all(-3 < n < 3 for n in numbers)
    assert optional is None or 100 <= optional <= 105
    assert isinstance(pair, tuple)
    assert pair[1] in ("a", "b")
    assert all(0 <= n <= 50 for n in unique)


@FAST
@given(tree=values(Tree))
def test_recursive_models_are_generated(tree: Tree) -> None:
    def depth(node: Tree) -> int:
        return 1 + max((depth(child) for child in node.children), default=0)

    assert depth(tree) >= 1
    assert all(len(node.children) <= 2 for node in [tree, *tree.children])


# --- values and inputs: overrides ---------------------------------------------------


@FAST
@given(
    order=values(
        Order,
        overrides={
            "email": st.just("a@b.co"),
            "address.city": st.sampled_from(["Paris", "Lyon"]),
            "lines[].quantity": st.just(7),
        },
    )
)
def test_overrides_replace_the_strategy_of_a_field(order: Order) -> None:
    assert order.email == "a@b.co"
    assert order.address.city in ("Paris", "Lyon")
    assert all(line.quantity == 7 for line in order.lines)


@FAST
@given(
    data=inputs(
        rate,
        overrides={"problem.product": st.just("Acme Vault"), "problem.symptoms": st.just(["x"])},
    )
)
def test_inputs_are_the_data_parameters_with_overrides_by_path(data: dict[str, Any]) -> None:
    assert set(data) == {"problem"}  # the client is not data
    assert isinstance(data["problem"], Problem)
    assert data["problem"].product == "Acme Vault"
    assert data["problem"].symptoms == ["x"]


@FAST
@given(data=inputs(rate, overrides={"problem": st.just(PROBLEM.model_dump())}))
def test_a_whole_parameter_can_be_overridden(data: dict[str, Any]) -> None:
    assert data["problem"] == PROBLEM


def _ship(lines: list[Line], note: str) -> str:
    return note


SHIP = Step(_ship)


@FAST
@given(data=inputs(SHIP, overrides={"lines[].quantity": st.just(3), "note": st.just("fragile")}))
def test_input_overrides_reach_the_items_of_a_list_parameter(data: dict[str, Any]) -> None:
    assert data["note"] == "fragile"
    assert all(line.quantity == 3 for line in data["lines"])


def test_an_override_that_gives_invalid_values_or_conflicts_is_an_error() -> None:
    @FAST
    @given(data=inputs(rate, overrides={"problem": st.just({"product": ""})}))
    def property_(data: dict[str, Any]) -> None:
        pass

    with pytest.raises(UnsupportedFieldError, match="the override 'problem' gave a value that"):
        property_()
    with pytest.raises(ValueError, match="both replace it whole and replace its fields"):
        inputs(rate, overrides={"problem": st.just(PROBLEM), "problem.product": st.just("x")})


def test_an_override_naming_no_field_is_an_error_listing_the_fields() -> None:
    with pytest.raises(ValueError, match=r"'adress\.city' names no field of Order.*address\.city"):
        values(Order, overrides={"adress.city": st.just("Paris")})
    with pytest.raises(ValueError, match=r"no data parameter 'client'.*problem"):
        inputs(rate, overrides={"client": st.just(CLIENT)})


# --- values: what cannot be generated -----------------------------------------------


def _never_valid(text: str) -> str:
    raise ValueError("no generated text is a valid product code")


class WithValidator(BaseModel):
    name: str
    code: Annotated[str, AfterValidator(_never_valid)]


class WithNot(BaseModel):
    word: str = Field(json_schema_extra={"not": {"const": "forbidden"}})


class Opaque:
    pass


class WithOpaque(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    label: str
    handle: Opaque


def test_a_keyword_without_a_strategy_names_the_type_and_field() -> None:
    with pytest.raises(UnsupportedFieldError) as caught:
        values(WithNot)

    message = str(caught.value)
    assert "field 'word' of WithNot" in message
    assert "'not'" in message
    assert "overrides={'word': ...}" in message
    assert (caught.value.type_name, caught.value.field) == ("WithNot", "word")


def test_a_type_without_a_json_form_names_its_field() -> None:
    with pytest.raises(UnsupportedFieldError, match=r"field 'handle' of WithOpaque"):
        values(WithOpaque)


def test_a_custom_validator_that_rejects_what_the_schema_allows_names_the_field() -> None:
    @FAST
    @given(value=values(WithValidator))
    def property_(value: WithValidator) -> None:
        pass

    with pytest.raises(UnsupportedFieldError) as caught:
        property_()

    message = str(caught.value)
    assert "field 'code' of WithValidator" in message
    assert "custom validator" in message
    assert "overrides={'code': ...}" in message


def test_an_override_does_not_bypass_validation() -> None:
    @FAST
    @given(value=values(WithValidator, overrides={"code": st.text(min_size=1)}))
    def property_(value: WithValidator) -> None:
        raise AssertionError("unreachable: every value fails the validator")

    with pytest.raises(
        UnsupportedFieldError, match="field 'code' of WithValidator: its override gives values"
    ):
        property_()


# --- replies ------------------------------------------------------------------------


def _embedded_json(text: str) -> str:
    return text[text.index("{") : text.rindex("}") + 1]


@FAST
@given(reply=replies(Order, shapes=["valid"]))
def test_a_valid_reply_parses(reply: Reply) -> None:
    assert reply.shape == "valid"
    Order.model_validate_json(reply.text)


@FAST
@given(reply=replies(rate, shapes=["fenced"]))
def test_a_fenced_reply_holds_valid_json_in_a_json_fence(reply: Reply) -> None:
    assert reply.text.startswith("```json\n")
    assert reply.text.endswith("\n```")
    Urgency.model_validate_json(reply.text.removeprefix("```json\n").removesuffix("\n```"))
    with pytest.raises(ValidationError):
        Urgency.model_validate_json(reply.text)


@FAST
@given(reply=replies(rate, shapes=["prose"]))
def test_a_prose_reply_holds_valid_json_between_sentences(reply: Reply) -> None:
    before, after = reply.text.split(_embedded_json(reply.text))
    assert before.strip()
    assert after.strip()
    Urgency.model_validate_json(_embedded_json(reply.text))
    with pytest.raises(ValidationError):
        Urgency.model_validate_json(reply.text)


@FAST
@given(reply=replies(Order, shapes=["truncated"]))
def test_a_truncated_reply_is_valid_json_cut_short(reply: Reply) -> None:
    assert reply.text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.text)
    with pytest.raises(ValidationError):
        Order.model_validate_json(reply.text)


@FAST
@given(reply=replies(Order, shapes=["wrong_type"]))
def test_a_wrong_type_reply_is_json_with_a_value_of_another_type(reply: Reply) -> None:
    json.loads(reply.text)
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(reply.text)
    assert "missing" not in {error["type"] for error in caught.value.errors()}


@FAST
@given(reply=replies(Order, shapes=["missing_field"]))
def test_a_missing_field_reply_lacks_a_required_field(reply: Reply) -> None:
    json.loads(reply.text)
    with pytest.raises(ValidationError) as caught:
        Order.model_validate_json(reply.text)
    assert {error["type"] for error in caught.value.errors()} == {"missing"}


def test_replies_come_in_every_shape() -> None:
    options = SEARCH
    for shape in ALL_SHAPES:
        found = find(replies(rate), lambda r, s=shape: r.shape == s, settings=options)
        assert found.shape == shape


def test_a_shape_an_output_cannot_have_is_left_out_or_refused() -> None:
    options = SEARCH
    # A list of integers has no field to remove.
    with pytest.raises(ValueError, match="cannot have the shape 'missing_field'"):
        replies(list[int], shapes=["missing_field"])
    with pytest.raises(NoSuchExample):
        find(replies(list[int]), lambda r: r.shape == "missing_field", settings=options)
    with pytest.raises(ValueError, match="unknown reply shape 'garbled'"):
        replies(Urgency, shapes=["garbled"])


# --- assert_prompt_renders ----------------------------------------------------------


@FAST
@given(data=inputs(rate))
def test_a_prompt_that_reads_every_field_renders(data: dict[str, Any]) -> None:
    assert_prompt_renders(rate, data, categories=CATEGORIES)


def test_a_prompt_that_leaves_out_a_field_is_caught() -> None:
    seeded = with_prompts(
        rate.function,
        SYSTEM,
        Prompt.from_string(
            CLASSIFY_SOURCE.replace("Customer goal: {{ problem.customer_goal }}\n", ""),
            name="classify",
        ),
    )

    with pytest.raises(AssertionError) as caught:
        assert_prompt_renders(seeded, {"problem": PROBLEM}, categories=CATEGORIES)

    message = str(caught.value)
    assert "step 'rate'" in message
    assert "(system, classify)" in message
    assert "field 'problem.customer_goal' is never read" in message
    assert "sentiment" not in message
    assert "unused_ok={'problem.customer_goal'}" in message
    # Left out on purpose, it is allowed.
    assert_prompt_renders(
        seeded, {"problem": PROBLEM}, categories=CATEGORIES, unused_ok={"problem.customer_goal"}
    )


def test_a_prompt_with_an_undefined_variable_is_caught() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_prompt_renders(rate, {"problem": PROBLEM})

    message = str(caught.value)
    assert "prompt 'classify' does not render" in message
    assert "undefined variable categories" in message
    assert "assert_prompt_renders(step, inputs, categories=...)" in message


def test_reading_an_attribute_that_does_not_exist_is_caught() -> None:
    typo = Prompt.from_string("{{ problem.produkt }} {{ problem }}", name="typo")

    with pytest.raises(AssertionError, match=r"prompt 'typo' does not render.*produkt"):
        assert_prompt_renders(with_prompts(rate.function, typo), {"problem": PROBLEM})


class Order2(BaseModel):
    customer: Address | None
    lines: list[Line]
    note: str


def _order_step(source: str) -> Step[..., Any]:
    def take(order: Order2, note: str) -> str:
        return ""

    return with_prompts(take, Prompt.from_string(source, name="order"))


ORDER = Order2(
    customer=Address(city="Paris", zip_code="75001"),
    lines=[Line(sku="SKU-AB123", quantity=2), Line(sku="SKU-CD456", quantity=1)],
    note="fragile",
)


def test_fields_of_nested_models_and_list_items_are_tracked() -> None:
    complete = _order_step(
        "{{ note }} {{ order.customer.city }} {{ order.customer['zip_code'] }} {{ order.note }}"
        "{% for line in order.lines %}{{ line.sku }} x{{ line.quantity }}{% endfor %}"
    )
    assert_prompt_renders(complete, {"order": ORDER, "note": "n"})

    partial = _order_step(
        "{{ note }} {{ order.customer.city }} {{ order.note }}"
        "{% for line in order.lines %}{{ line.sku }}{% endfor %}"
    )
    with pytest.raises(AssertionError) as caught:
        assert_prompt_renders(partial, {"order": ORDER, "note": "n"})
    message = str(caught.value)
    assert "field 'order.customer.zip_code' is never read" in message
    assert "field 'order.lines[].quantity' is never read" in message
    assert "order.note" not in message
    assert "sku" not in message


def test_printing_a_model_whole_reads_all_of_it() -> None:
    whole = _order_step("{{ note }} {{ order.customer }} {{ order.lines }} {{ order.note }}")
    assert_prompt_renders(whole, {"order": ORDER, "note": "n"})


def test_an_input_never_read_and_unknown_unused_ok_paths_are_reported() -> None:
    no_note = _order_step("{{ order }}")
    with pytest.raises(AssertionError, match="input 'note' is never read"):
        assert_prompt_renders(no_note, {"order": ORDER, "note": "n"})
    assert_prompt_renders(no_note, {"order": ORDER, "note": "n"}, unused_ok={"note"})

    with pytest.raises(ValueError, match=r"unused_ok names 'order\.colour'"):
        assert_prompt_renders(no_note, {"order": ORDER, "note": "n"}, unused_ok={"order.colour"})


def test_a_none_nested_model_needs_only_its_own_field_read() -> None:
    guarded = _order_step(
        "{{ note }}{% if order.customer %}{{ order.customer.city }}{% endif %}"
        "{{ order.lines | length }} {{ order.note }}"
    )
    assert_prompt_renders(
        guarded, {"order": ORDER.model_copy(update={"customer": None, "lines": []}), "note": "n"}
    )


# --- assert_parses_or_rejects -------------------------------------------------------


@FAST
@given(data=inputs(rate), reply=replies(rate))
def test_a_step_that_parses_with_pydantic_parses_or_rejects_every_reply(
    data: dict[str, Any], reply: Reply
) -> None:
    output = assert_parses_or_rejects(rate, reply, **data, client=CLIENT)

    if reply.shape == "valid":
        assert output == Urgency.model_validate_json(reply.text)
    else:
        assert output is None


@pytest.mark.parametrize(
    ("parse", "client"),
    [
        pytest.param(rate, CLIENT, id="openai"),
        pytest.param(rate_streamed, CLIENT, id="openai-stream-usage"),
        pytest.param(rate_streamed_without_usage, CLIENT, id="openai-stream"),
        pytest.param(rate_with_claude, CLAUDE, id="anthropic"),
        pytest.param(rate_with_claude_streamed, CLAUDE, id="anthropic-stream"),
        pytest.param(rate_async, ASYNC_CLIENT, id="openai-async"),
    ],
)
def test_a_valid_reply_reaches_the_parser_whole_in_every_wire_format(
    parse: Step[..., Any], client: object
) -> None:
    text = '{"level": 4, "reason": "the vault \\"is\\" down \\u00e9t\\u00e9"}'

    output = assert_parses_or_rejects(parse, Reply(text, "valid"), problem=PROBLEM, client=client)

    assert output == Urgency(level=4, reason='the vault "is" down été')
    assert assert_parses_or_rejects(parse, "not json", problem=PROBLEM, client=client) is None


@pytest.mark.parametrize(
    ("parse", "client", "shape"),
    [
        pytest.param(rate_by_hand, CLIENT, "missing_field", id="openai"),
        pytest.param(rate_streamed_by_hand, CLIENT, "missing_field", id="openai-stream"),
        pytest.param(rate_with_claude_by_hand, CLAUDE, "valid", id="anthropic"),
    ],
)
def test_a_parser_raising_key_error_is_caught(
    parse: Step[..., Any], client: object, shape: str
) -> None:
    @FAST
    @given(data=inputs(parse), reply=replies(parse, shapes=[shape]))
    def property_(data: dict[str, Any], reply: Reply) -> None:
        assert_parses_or_rejects(parse, reply, **data, client=client)

    with pytest.raises(AssertionError) as caught:
        property_()

    message = str(caught.value)
    assert f"step {parse.name!r} raised KeyError" in message
    assert f"on the {shape} reply '" in message
    assert "StepContractError" in message


def test_the_failure_names_the_exception_and_shows_the_reply() -> None:
    with pytest.raises(AssertionError) as caught:
        assert_parses_or_rejects(
            rate_by_hand, Reply('{"level": 3}', "missing_field"), problem=PROBLEM, client=CLIENT
        )

    message = str(caught.value)
    assert message.startswith("step 'rate_by_hand' raised KeyError: 'reason'")
    assert """on the missing_field reply '{"level": 3}'""" in message
    assert isinstance(caught.value.__cause__, KeyError)


def test_arguments_that_break_the_input_contract_are_not_a_pass() -> None:
    with pytest.raises(AssertionError, match="break its input contract"):
        assert_parses_or_rejects(rate, Reply("{}", "valid"), problem={"product": ""}, client=CLIENT)


def test_a_check_that_rejects_the_output_is_a_rejection() -> None:
    def level_is_high(output: Urgency) -> bool:
        """The level is at least 4."""
        return output.level >= 4

    strict = Step(rate.function, prompts=rate.prompts, checks=[level_is_high])
    low = Reply('{"level": 1, "reason": "calm"}', "valid")
    high = Reply('{"level": 5, "reason": "on fire"}', "valid")

    assert assert_parses_or_rejects(strict, low, problem=PROBLEM, client=CLIENT) is None
    assert assert_parses_or_rejects(strict, high, problem=PROBLEM, client=CLIENT) == Urgency(
        level=5, reason="on fire"
    )


@step
def lists_models_first(problem: Problem, client: OpenAI) -> Urgency:
    client.models.list()
    return rate.function(problem, client)


@step
def makes_no_request(problem: Problem) -> Urgency:
    return Urgency(level=1, reason="cached answer")


def test_a_request_that_is_not_a_model_call_is_blocked() -> None:
    with pytest.raises(NetworkBlockedError) as caught:
        assert_parses_or_rejects(
            lists_models_first, Reply("{}", "valid"), problem=PROBLEM, client=CLIENT
        )

    assert str(caught.value).startswith(
        "a property test tried to reach the network: GET http://127.0.0.1:9/v1/models; "
        "property tests make no model call"
    )


def test_a_step_that_sends_no_request_never_parses_the_reply() -> None:
    with pytest.raises(AssertionError, match="made no model request"):
        assert_parses_or_rejects(makes_no_request, Reply("{}", "valid"), problem=PROBLEM)


def test_the_interception_is_removed_afterwards() -> None:
    original = httpx.HTTPTransport.handle_request

    assert_parses_or_rejects(rate, Reply("{}", "valid"), problem=PROBLEM, client=CLIENT)
    with pytest.raises(AssertionError):
        assert_parses_or_rejects(rate_by_hand, Reply("{}", "valid"), problem=PROBLEM, client=CLIENT)

    assert httpx.HTTPTransport.handle_request is original


# --- no_network ---------------------------------------------------------------------


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every socket connection attempted while the test runs."""
    attempts: list[object] = []
    connect = socket.socket.connect

    def counting(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", counting)
    return attempts


def test_no_network_blocks_a_real_client_before_any_connection(
    httpserver: HTTPServer, connections: list[object]
) -> None:
    client = OpenAI(base_url=httpserver.url_for("/v1"), api_key="unused", max_retries=0)
    url = httpserver.url_for("/v1/chat/completions")

    with pytest.raises(NetworkBlockedError) as caught, no_network():
        rate(PROBLEM, client)

    assert str(caught.value) == (
        f"a property test tried to reach the network: POST {url}; property tests make no model call"
    )
    assert httpserver.log == []
    assert connections == []

    # The same call without no_network does reach the server: the checks above can fail.
    # (Called unwrapped: a step called in a test without a promptflow marker is refused.)
    with pytest.raises(openai.InternalServerError):  # nothing is expected: a 500
        rate.function(PROBLEM, client)
    assert len(httpserver.log) == 1
    assert connections


def test_no_network_blocks_requests_and_raises_even_when_the_error_is_swallowed(
    httpserver: HTTPServer, connections: list[object]
) -> None:
    original = httpx.HTTPTransport.handle_request
    url = httpserver.url_for("/ping")

    def swallowing() -> None:
        # Code that hides a failed request does not hide it from the property.
        with contextlib.suppress(NetworkBlockedError):
            requests.get(url, timeout=5)

    with pytest.raises(NetworkBlockedError, match=f"GET {re.escape(url)};"), no_network():
        swallowing()

    assert httpserver.log == []
    assert connections == []
    assert httpx.HTTPTransport.handle_request is original


# --- as a user runs them ------------------------------------------------------------

USER_CHAIN = """
from __future__ import annotations

from typing import Literal

from openai import OpenAI
from pydantic import BaseModel, Field

from pytest_promptflow import Prompt, step

CLASSIFY = Prompt.from_string(
    "{{ problem.product }}: {{ problem.summary }} ({{ problem.sentiment }})",
    name="classify",
)


class Problem(BaseModel):
    product: str = Field(pattern=r"^Acme [A-Z][a-z]+$")
    summary: str = Field(min_length=10, max_length=200)
    sentiment: Literal["calm", "angry"]


class Urgency(BaseModel):
    level: int = Field(ge=1, le=5)
    reason: str


@step(prompt=CLASSIFY)
def grade(problem: Problem, client: OpenAI) -> Urgency:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": CLASSIFY.render(problem=problem)}],
    )
    return Urgency.model_validate_json(completion.choices[0].message.content)
"""

USER_TESTS = """
from hypothesis import Phase, given, settings
from openai import OpenAI

from chain import grade
from pytest_promptflow import strategies

CLIENT = OpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
FAST = settings(
    max_examples=20, deadline=None, database=None, phases=(Phase.generate, Phase.shrink)
)


@FAST
@given(inputs=strategies.inputs(grade))
def test_the_prompt_shows_every_field(inputs):
    strategies.assert_prompt_renders(grade, inputs)


@FAST
@given(inputs=strategies.inputs(grade), reply=strategies.replies(grade))
def test_any_reply_parses_or_breaks_the_contract(inputs, reply):
    strategies.assert_parses_or_rejects(grade, reply, **inputs, client=CLIENT)
"""


def test_a_user_project_runs_the_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(chain=USER_CHAIN, test_properties=USER_TESTS)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)


def test_a_user_project_sees_the_seeded_bugs(pytester: pytest.Pytester) -> None:
    seeded = USER_CHAIN.replace(" ({{ problem.sentiment }})", "").replace(
        "return Urgency.model_validate_json(completion.choices[0].message.content)",
        "import json\n    data = json.loads(completion.choices[0].message.content)\n"
        "    return Urgency(level=data['level'], reason=data['reason'])",
    )
    pytester.makepyfile(chain=seeded, test_properties=USER_TESTS)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: step 'grade': its prompts (classify) do not show the model*",
            "*field 'problem.sentiment' is never read*",
            "*AssertionError: step 'grade' raised *Error* on the * reply *",
        ],
        consecutive=False,
    )


EXAMPLE_TESTS = """
import pytest
from hypothesis import Phase, given, settings
from openai import OpenAI

from pytest_promptflow import Prompt, Step, strategies
from triage import CATEGORIES, PRODUCTS, classify, draft, extract, resolve
from triage.chain import CLASSIFY, SYSTEM

CLIENT = OpenAI(base_url="http://127.0.0.1:9/v1", api_key="unused", max_retries=0)
FAST = settings(
    max_examples=15, deadline=None, database=None, phases=(Phase.generate, Phase.shrink)
)

# Found by these properties: fields the example's prompts never show the model.
RESOLVE_LEAVES_OUT = {"problem.sentiment"}
DRAFT_LEAVES_OUT = {
    "ticket.body",
    "ticket.channel",
    "ticket.customer_email",
    "ticket.plan",
    "ticket.product",
    "problem.symptoms",
}


@FAST
@given(inputs=strategies.inputs(extract))
def test_extract_renders(inputs):
    strategies.assert_prompt_renders(extract, inputs, task="extract", products=PRODUCTS)


@FAST
@given(inputs=strategies.inputs(classify))
def test_classify_renders(inputs):
    strategies.assert_prompt_renders(classify, inputs, task="classify", categories=CATEGORIES)


@FAST
@given(inputs=strategies.inputs(resolve))
def test_resolve_renders(inputs):
    strategies.assert_prompt_renders(resolve, inputs, task="resolve", unused_ok=RESOLVE_LEAVES_OUT)


@FAST
@given(inputs=strategies.inputs(draft))
def test_draft_renders(inputs):
    strategies.assert_prompt_renders(draft, inputs, task="draft", unused_ok=DRAFT_LEAVES_OUT)


@FAST
@given(inputs=strategies.inputs(resolve))
def test_resolve_leaves_out_the_sentiment(inputs):
    strategies.assert_prompt_renders(resolve, inputs, task="resolve")


@FAST
@given(inputs=strategies.inputs(classify))
def test_a_classify_prompt_without_the_goal_is_caught(inputs):
    seeded = Prompt.from_string(
        CLASSIFY.source.replace("Customer goal: {{ problem.customer_goal }}", ""),
        name="classify",
    )
    step = Step(classify.function, prompts=[SYSTEM, seeded])
    strategies.assert_prompt_renders(step, inputs, task="classify", categories=CATEGORIES)


@pytest.mark.parametrize("step", [extract, classify, resolve, draft], ids=lambda s: s.name)
def test_every_step_parses_or_rejects_any_reply(step):
    @FAST
    @given(inputs=strategies.inputs(step), reply=strategies.replies(step))
    def property_(inputs, reply):
        strategies.assert_parses_or_rejects(step, reply, **inputs, client=CLIENT)

    property_()
"""


def test_the_properties_hold_on_the_example_chain(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a process of its own: the example's steps are found by name in its own suite,
    # and must not meet a second copy of themselves left over from this run.
    monkeypatch.setenv("PYTHONPATH", str(EXAMPLES))
    pytester.makepyfile(test_example=EXAMPLE_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    result.assert_outcomes(passed=8, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_resolve_leaves_out_the_sentiment*",
            "*field 'problem.sentiment' is never read*",
            "*test_a_classify_prompt_without_the_goal_is_caught*",
            "*field 'problem.customer_goal' is never read*",
        ],
        consecutive=False,
    )


def test_importing_the_runtime_still_imports_neither_pytest_nor_hypothesis() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pytest_promptflow; "
            "print(sorted({'pytest', 'hypothesis', 'vcr'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert completed.stdout.strip() == "[]"
