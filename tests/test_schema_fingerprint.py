"""The output-schema fingerprint sees the contract: names, aliases, types, defaults, bounds."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from drift_chains import one_step, record_golden, reply, write_chain, write_one_step
from llm_fakes import Project
from pydantic import AliasChoices, BaseModel, Field, TypeAdapter

from pytest_promptflow.fingerprint import legacy_schema_fingerprint, schema_fingerprint


def fingerprint(model: Any) -> str:
    return schema_fingerprint(TypeAdapter(model))


class Base(BaseModel):
    """A reply."""

    text: str


class WithTitle(BaseModel):
    """A reply."""

    text: str
    title: str = ""


class Documented(BaseModel):
    """A reply, documented at length: prose is not the contract."""

    text: str = Field(description="What the model said.", examples=["hello"], title="Text")


class Renamed(BaseModel):
    """A reply."""

    body: str = Field(validation_alias="text")


class Aliased(BaseModel):
    """A reply."""

    text: str = Field(validation_alias=AliasChoices("message", "text"))


class SerializedAs(BaseModel):
    """A reply."""

    text: str = Field(serialization_alias="message")


class Defaulted(BaseModel):
    """A reply."""

    text: str = "none"


class Bounded(BaseModel):
    """A reply."""

    text: str = Field(max_length=80)


class Inner(BaseModel):
    text: str


class Outer(BaseModel):
    inner: Inner


class InnerRenamed(BaseModel):
    text: str


class OuterRenamedInner(BaseModel):
    inner: InnerRenamed


def test_prose_is_not_the_contract() -> None:
    assert fingerprint(Documented) == fingerprint(Base)


def test_renaming_a_model_class_is_not_a_change_of_contract() -> None:
    assert fingerprint(Outer) == fingerprint(OuterRenamedInner)


@pytest.mark.parametrize(
    "changed",
    [WithTitle, Renamed, Aliased, SerializedAs, Defaulted, Bounded],
    ids=lambda model: model.__name__,
)
def test_names_aliases_defaults_and_constraints_are_the_contract(changed: type) -> None:
    assert fingerprint(changed) != fingerprint(Base)


def test_a_field_named_title_is_seen_where_the_old_fingerprint_dropped_it() -> None:
    # The old fingerprint dropped every "title" key, the field of that name included.
    assert legacy_schema_fingerprint(TypeAdapter(WithTitle)) == legacy_schema_fingerprint(
        TypeAdapter(Base)
    )
    assert fingerprint(WithTitle) != fingerprint(Base)


@pytest.mark.parametrize(
    "fields",
    [
        'value: str\n    title: str = ""',
        'renamed: str = Field(validation_alias="value")',
    ],
    ids=["a-field-named-title", "renamed-keeping-the-validation-alias"],
)
def test_the_gate_calls_a_change_of_field_names_a_schema_change(
    project: Project, fields: str
) -> None:
    write_one_step(project, "str")
    record_golden(project, reply({"value": "gravity"}))

    write_chain(project, one_step(fields))
    with project.llm.offline():
        result = project.run()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  step label — schema: the output schema changed: * -> *"])


def test_golden_values_with_the_old_fingerprint_still_compare_equal(project: Project) -> None:
    write_one_step(project, "Annotated[str, Field(max_length=9)]")
    record_golden(project, reply({"value": "gravity"}))
    recorded = project.cassettes / "test_chain" / "test_label.json"
    text = recorded.read_text()
    # The fingerprint an earlier version wrote for the same output type.
    from pydantic import create_model

    old_model = create_model("Output", value=(Annotated[str, Field(max_length=9)], ...))
    legacy = legacy_schema_fingerprint(TypeAdapter(old_model))
    current = project.cassette("test_chain/test_label.json")["steps"][0]["schema"]
    recorded.write_text(text.replace(current, legacy))

    with project.llm.offline():
        project.run().assert_outcomes(passed=1)
