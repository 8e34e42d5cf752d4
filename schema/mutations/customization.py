"""Admin mutations for custom fields and layouts (others get a top-level FORBIDDEN)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from resolvers import customization as rules
from resolvers import layout as layouts
from schema.context import Info
from schema.customization import (
    CustomFieldDefinition,
    CustomizableEntity,
    FieldType,
    Layout,
    render,
)
from schema.mutations.base import UserError, mutate, provided

UNSET = strawberry.UNSET


@strawberry.input
class CustomFieldMappingInput:
    entity: CustomizableEntity
    key: str


@strawberry.input
class CreateCustomFieldInput:
    entity: CustomizableEntity
    label: str
    type: FieldType
    key: str | None = strawberry.field(
        default=UNSET, description="cf_ + snake_case; derived from the label when omitted."
    )
    required: bool | None = UNSET
    options: list[str] | None = strawberry.field(
        default=UNSET, description="PICKLIST and MULTI_PICKLIST: the values (stored as is)."
    )
    default_value: JSON | None = UNSET
    help_text: str | None = UNSET
    maps_to: list[CustomFieldMappingInput] | None = strawberry.field(
        default=UNSET, description="Lead fields: the field convertLead copies the value into."
    )


@strawberry.input
class UpdateCustomFieldInput:
    entity: CustomizableEntity
    key: str
    label: str | None = UNSET
    required: bool | None = UNSET
    options: list[str] | None = strawberry.field(
        default=UNSET, description="Records keep a removed option; new writes refuse it."
    )
    default_value: JSON | None = UNSET
    help_text: str | None = UNSET
    maps_to: list[CustomFieldMappingInput] | None = UNSET


@strawberry.input
class CustomFieldKeyInput:
    entity: CustomizableEntity
    key: str


@strawberry.input
class LayoutFieldInput:
    key: str
    label: str | None = None
    required: bool | None = strawberry.field(
        default=None, description="Make an optional writable field mandatory (or not)."
    )
    visible: bool | None = None


@strawberry.input
class LayoutBlockInput:
    label: str
    fields: list[LayoutFieldInput]


@strawberry.input
class UpdateLayoutInput:
    entity: CustomizableEntity
    blocks: list[LayoutBlockInput] = strawberry.field(
        description="Every block in order; fields left out follow in a last block."
    )


@strawberry.type
class CustomFieldPayload:
    custom_field: CustomFieldDefinition | None
    user_errors: list[UserError]


@strawberry.type
class CreateCustomFieldPayload(CustomFieldPayload):
    pass


@strawberry.type
class UpdateCustomFieldPayload(CustomFieldPayload):
    pass


@strawberry.type
class DeactivateCustomFieldPayload(CustomFieldPayload):
    pass


@strawberry.type
class ActivateCustomFieldPayload(CustomFieldPayload):
    pass


@strawberry.type
class UpdateLayoutPayload:
    layout: Layout | None
    user_errors: list[UserError]


def _definition_data(input: CreateCustomFieldInput | UpdateCustomFieldInput) -> dict[str, object]:
    data = provided(input)
    data["entity"] = input.entity.value
    if "type" in data:
        data["type"] = input.type.value  # type: ignore[union-attr]
    if data.get("maps_to") is not None:
        data["maps_to"] = [(m.entity.value, m.key) for m in input.maps_to or []]
    return data


@strawberry.type
class CustomizationMutation:
    @strawberry.mutation(description="Add a custom field (admin).")
    async def create_custom_field(
        self, info: Info, input: CreateCustomFieldInput
    ) -> CreateCustomFieldPayload:
        ctx = info.context
        d, errors = await mutate(
            info, lambda: rules.create_definition(ctx.session, ctx.viewer, _definition_data(input))
        )
        return CreateCustomFieldPayload(custom_field=d, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Change a custom field; its key and type never change.")
    async def update_custom_field(
        self, info: Info, input: UpdateCustomFieldInput
    ) -> UpdateCustomFieldPayload:
        ctx = info.context
        d, errors = await mutate(
            info, lambda: rules.update_definition(ctx.session, ctx.viewer, _definition_data(input))
        )
        return UpdateCustomFieldPayload(custom_field=d, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Hide from forms and new writes; the data stays.")
    async def deactivate_custom_field(
        self, info: Info, input: CustomFieldKeyInput
    ) -> DeactivateCustomFieldPayload:
        ctx = info.context
        d, errors = await mutate(
            info,
            lambda: rules.set_active(ctx.session, ctx.viewer, input.entity.value, input.key, False),
        )
        return DeactivateCustomFieldPayload(custom_field=d, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Bring a deactivated field back, with its data.")
    async def activate_custom_field(
        self, info: Info, input: CustomFieldKeyInput
    ) -> ActivateCustomFieldPayload:
        ctx = info.context
        d, errors = await mutate(
            info,
            lambda: rules.set_active(ctx.session, ctx.viewer, input.entity.value, input.key, True),
        )
        return ActivateCustomFieldPayload(custom_field=d, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(description="Arrange an entity's form (admin).")
    async def update_layout(self, info: Info, input: UpdateLayoutInput) -> UpdateLayoutPayload:
        ctx = info.context
        blocks = [
            {"label": b.label, "fields": [vars(f) for f in b.fields]} for b in input.blocks
        ]
        result, errors = await mutate(
            info,
            lambda: layouts.update_layout(ctx.session, ctx.viewer, input.entity.value, blocks),
        )
        rendered = None if result is None else await render(info, input.entity.value, result)
        return UpdateLayoutPayload(layout=rendered, user_errors=errors)
