"""Custom fields and layouts: definitions, values on records, forms."""

from __future__ import annotations

import datetime as dt
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

import models
from resolvers import customization as rules
from resolvers import layout as layouts
from resolvers.kinds import ENTITY_OF_TYPE
from schema.context import Context, Info
from schema.reads import PerType, computed, computed_with, to_one, value_field
from schema.user import User


@strawberry.enum
class CustomizableEntity(Enum):
    OPPORTUNITY = "OPPORTUNITY"
    ACCOUNT = "ACCOUNT"
    CONTACT = "CONTACT"
    LEAD = "LEAD"


@strawberry.enum(description="What a field holds; REFERENCE is a standard link to a record.")
class FieldType(Enum):
    TEXT = "TEXT"
    TEXTAREA = "TEXTAREA"
    INTEGER = "INTEGER"
    DECIMAL = "DECIMAL"
    CURRENCY = "CURRENCY"
    PERCENT = "PERCENT"
    DATE = "DATE"
    DATETIME = "DATETIME"
    BOOLEAN = "BOOLEAN"
    EMAIL = "EMAIL"
    URL = "URL"
    PHONE = "PHONE"
    PICKLIST = "PICKLIST"
    MULTI_PICKLIST = "MULTI_PICKLIST"
    REFERENCE = "REFERENCE"


@strawberry.type(description="A custom field's value on a record, typed by its definition.")
class CustomFieldValue:
    key: str
    label: str
    value: JSON | None = strawberry.field(
        description="A string (text, decimals as \"12.50\", dates, instants), an integer, "
        "a boolean, a list of options, or null."
    )

    @strawberry.field
    @staticmethod
    def type(root: strawberry.Parent[rules.Value]) -> FieldType:
        return FieldType(root.type)


async def _definitions(ctx: Context, model: type) -> list[models.CustomFieldDefinition]:
    return await ctx.loaders.custom_definitions.load(ENTITY_OF_TYPE[model.__name__])


# The custom field definitions of a record's entity.
DEFINITIONS = PerType(_definitions)


def _one(record: Any, definitions: list[Any], key: str) -> rules.Value | None:
    found = [v for v in rules.values(definitions, record.custom_fields) if v.key == key]
    return found[0] if found else None


@strawberry.interface(description="A record with admin-defined custom fields.")
class Customizable:
    custom_fields: list[CustomFieldValue] = computed(
        lambda record, definitions: rules.values(definitions, record.custom_fields),
        reads=("custom_fields",), using=DEFINITIONS,
        description="The active custom fields, in order; value null when unset.",
    )

    @computed_with(_one, reads=("custom_fields",), using=DEFINITIONS,
                   description="One custom field by key; null for an unknown key.")
    @staticmethod
    async def custom_field(
        root: strawberry.Parent[Any], info: Info, key: str
    ) -> CustomFieldValue | None: ...


@strawberry.input(description="A custom field's new value (null clears it).")
class CustomFieldInput:
    key: str
    value: JSON | None = None


@strawberry.input(description="Conditions on one custom field; every given one must hold.")
class CustomFieldFilter:
    key: str
    eq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    min: JSON | None = strawberry.field(default=None, description="Numbers, dates, instants.")
    max: JSON | None = None
    contains: str | None = strawberry.field(
        default=None, description="Text: case-insensitive substring; multi-picklist: option."
    )
    is_null: bool | None = None

    def to_rules(self) -> rules.CustomFilter:
        return rules.CustomFilter(
            key=self.key, eq=self.eq, in_=None if self.in_ is None else tuple(self.in_),
            min=self.min, max=self.max, contains=self.contains, is_null=self.is_null,
        )


@strawberry.type
class CustomFieldMapping:
    entity: CustomizableEntity
    key: str


@strawberry.type(description="A custom field an admin added to an entity.")
class CustomFieldDefinition:
    key: str
    label: str
    required: bool
    options: list[str] | None
    default_value: JSON | None
    help_text: str | None
    is_active: bool
    position: int
    created_at: dt.datetime
    updated_at: dt.datetime

    @strawberry.field
    @staticmethod
    def entity(root: strawberry.Parent[models.CustomFieldDefinition]) -> CustomizableEntity:
        return CustomizableEntity(root.entity)

    @strawberry.field
    @staticmethod
    def type(root: strawberry.Parent[models.CustomFieldDefinition]) -> FieldType:
        return FieldType(root.type)

    @strawberry.field(description="Lead fields: what conversion copies the value into.")
    @staticmethod
    def maps_to(root: strawberry.Parent[models.CustomFieldDefinition]) -> list[CustomFieldMapping]:
        return [
            CustomFieldMapping(entity=CustomizableEntity(e), key=k)
            for e, k in sorted((root.maps_to or {}).items())
        ]

    updated_by: User = to_one("User", "updated_by_id")


@strawberry.type(description="A field of a form, standard or custom.")
class LayoutField:
    key: str = strawberry.field(description="The GraphQL field name, or a custom field key.")
    label: str
    required: bool
    visible: bool
    read_only: bool
    options: list[str] | None = strawberry.field(
        description="Picklist fields: the active keys (custom: the options)."
    )
    choices: list[LayoutChoice] | None = strawberry.field(
        description="Picklist fields: the active values with their labels, in order."
    )
    help_text: str | None
    is_custom: bool
    type: FieldType


@strawberry.type
class LayoutBlock:
    label: str
    fields: list[LayoutField]


@strawberry.type(description="An entity's form, as the admin arranged it.")
class Layout:
    entity: CustomizableEntity
    blocks: list[LayoutBlock]


@strawberry.type(description="A value a picklist field offers: what to send and what to show.")
class LayoutChoice:
    key: str
    label: str


async def render(info: Info, entity: str, blocks: list[layouts.Block]) -> Layout:
    """Layout blocks for clients, with the active values of picklist fields."""
    active = {
        name: [LayoutChoice(key=key, label=label) for key, label in values]
        for name, values in (await layouts.choices(info.context.session)).items()
    }

    def field(f: layouts.FieldSpec) -> LayoutField:
        if f.options:
            choices: list[LayoutChoice] | None = [LayoutChoice(key=o, label=o) for o in f.options]
        else:
            choices = active.get(f.picklist or "")
        return LayoutField(
            key=f.key, label=f.label, required=f.required, visible=f.visible,
            read_only=f.read_only, options=None if choices is None else [c.key for c in choices],
            choices=choices, help_text=f.help_text, is_custom=f.custom, type=FieldType(f.type),
        )

    return Layout(
        entity=CustomizableEntity(entity),
        blocks=[LayoutBlock(label=b.label, fields=[field(f) for f in b.fields]) for b in blocks],
    )


@strawberry.type
class CustomizationQuery:
    @value_field()
    async def custom_field_definitions(
        self, info: Info, entity: CustomizableEntity, include_inactive: bool = False
    ) -> list[CustomFieldDefinition]:
        return await rules.definitions(  # type: ignore[return-value]
            info.context.session, entity.value, include_inactive
        )

    @value_field(description="The form of an entity: blocks of fields, in order.")
    async def layout(self, info: Info, entity: CustomizableEntity) -> Layout:
        return await render(info, entity.value, await layouts.layout(info.context.session,
                                                                     entity.value))
