"""Form layouts (the "Layout editor" issue, part 5, and its "Done when").

layout(entity:) gives ordered blocks of standard fields (keyed by their GraphQL field name)
and active custom fields, each with label, type, required, visible, readOnly and options.
updateLayout (admin only, audited) renames and reorders blocks, moves fields, relabels them
and makes optional fields mandatory or hidden; the API then requires a mandatory field on
create and refuses an update that clears it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import models
from resolvers.ids import pk_of, to_global_id
from tests.conftest import GraphQLClient
from tests.test_custom_fields import (
    ACTIVATE,
    CHANGES,
    DEACTIVATE,
    PAYLOAD,
    REGIONS,
    TYPE_NAME,
    Store,
    create,
    define,
    errors_of,
    only_error,
    update,
    values_of,
)

FIELD = "key label type required visible readOnly options helpText isCustom"
LAYOUT = f"""
query L($entity: CustomizableEntity!) {{
  layout(entity: $entity) {{ entity blocks {{ label fields {{ {FIELD} }} }} }}
}}
"""
UPDATE_LAYOUT = f"""
mutation U($input: UpdateLayoutInput!) {{
  updateLayout(input: $input) {{
    layout {{ entity blocks {{ label fields {{ {FIELD} }} }} }}
    userErrors {{ field code message }}
  }}
}}
"""
ENTITIES = ["OPPORTUNITY", "ACCOUNT", "CONTACT", "LEAD"]
DEFAULT_BLOCKS: dict[str, list[tuple[str, list[str]]]] = {
    "OPPORTUNITY": [
        ("Opportunity information", [
            "number", "name", "account", "contact", "amount", "currency", "expectedCloseDate",
            "salesStage", "probability", "type", "leadSource", "nextStep", "campaign",
            "assignedTo", "lostReason", "amountSource", "actualCloseDate",
        ]),
        ("Description", ["description"]),
    ],
    "ACCOUNT": [
        ("Organization information", [
            "number", "name", "industry", "website", "phone", "email", "city", "country",
            "annualRevenue", "employees", "assignedTo",
        ]),
        ("Description", ["description"]),
    ],
    "CONTACT": [
        ("Contact information", [
            "number", "firstName", "lastName", "account", "title", "email", "phone",
            "leadSource", "assignedTo",
        ]),
        ("Description", ["description"]),
    ],
    "LEAD": [
        ("Lead information", [
            "number", "firstName", "lastName", "company", "title", "email", "phone", "industry",
            "leadSource", "status", "campaign", "assignedTo",
        ]),
        ("Description", ["description"]),
    ],
}
ALWAYS_REQUIRED = {
    "OPPORTUNITY": {"name", "expectedCloseDate", "salesStage"},
    "ACCOUNT": {"name"},
    "CONTACT": {"lastName"},
    "LEAD": {"lastName", "company"},
}
READ_ONLY = {
    "OPPORTUNITY": {"number", "amountSource"},
    "ACCOUNT": {"number"},
    "CONTACT": {"number"},
    "LEAD": {"number"},
}


@pytest.fixture
def store(sessions) -> Store:
    return Store(sessions)


@pytest.fixture
async def admin(team, client_for) -> GraphQLClient:
    return await client_for(team["admin"])  # type: ignore[no-any-return]


async def layout_of(client: GraphQLClient, entity: str) -> list[dict[str, Any]]:
    return (await client.data(LAYOUT, {"entity": entity}))["layout"][  # type: ignore[no-any-return]
        "blocks"
    ]


def shape(blocks: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(b["label"], [f["key"] for f in b["fields"]]) for b in blocks]


def field_of(blocks: list[dict[str, Any]], key: str) -> dict[str, Any]:
    [found] = [f for b in blocks for f in b["fields"] if f["key"] == key]
    return found


async def set_layout(
    client: GraphQLClient, entity: str, blocks: list[dict[str, Any]]
) -> dict[str, Any]:
    data = await client.data(UPDATE_LAYOUT, {"input": {"entity": entity, "blocks": blocks}})
    return data["updateLayout"]  # type: ignore[no-any-return]


def blocks_with(entity: str, **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    """The default arrangement with per-field overrides (key → {required/visible/label})."""
    return [
        {"label": label, "fields": [{"key": k, **overrides.get(k, {})} for k in keys]}
        for label, keys in DEFAULT_BLOCKS[entity]
    ]


# --- rendering --------------------------------------------------------------------------


@pytest.mark.parametrize("entity", ENTITIES)
async def test_the_default_layout_lists_the_standard_fields_in_blocks(team, client_for, entity):
    # given
    rep = await client_for(team["rep"])

    # when
    data = await rep.data(LAYOUT, {"entity": entity})

    # then
    assert data["layout"]["entity"] == entity
    blocks = data["layout"]["blocks"]
    assert shape(blocks) == DEFAULT_BLOCKS[entity]
    fields = [f for b in blocks for f in b["fields"]]
    assert {f["key"] for f in fields if f["required"]} == ALWAYS_REQUIRED[entity]
    assert {f["key"] for f in fields if f["readOnly"]} == READ_ONLY[entity]
    assert all(f["visible"] and not f["isCustom"] for f in fields)


@pytest.mark.parametrize("entity", ENTITIES)
async def test_standard_field_keys_are_graphql_field_names_and_inputs(admin, entity):
    # given
    type_name = TYPE_NAME[entity]
    introspection = await admin.data(f"""{{
      output: __type(name: "{type_name}") {{ fields {{ name }} }}
      create: __type(name: "Create{type_name}Input") {{ inputFields {{ name }} }}
      update: __type(name: "Update{type_name}Input") {{ inputFields {{ name }} }}
    }}""")

    # when
    blocks = await layout_of(admin, entity)

    # then
    outputs = {f["name"] for f in introspection["output"]["fields"]}
    creates = {f["name"] for f in introspection["create"]["inputFields"]}
    updates = {f["name"] for f in introspection["update"]["inputFields"]}
    for f in (f for b in blocks for f in b["fields"]):
        assert f["key"] in outputs, f["key"]
        if not f["readOnly"]:
            name = f["key"] + "Id" if f["type"] == "REFERENCE" else f["key"]
            assert name in creates and name in updates, name


async def test_standard_picklist_fields_offer_the_active_keys(admin, db):
    # given: a lead source switched off
    value = (await db.execute(
        models.PicklistValue.__table__.update()
        .where(models.PicklistValue.picklist == "leadSource",
               models.PicklistValue.key == "OTHER")
        .values(is_active=False)
    ))
    assert value.rowcount == 1
    await db.commit()

    # when
    blocks = await layout_of(admin, "OPPORTUNITY")

    # then
    assert field_of(blocks, "salesStage")["options"] == [
        "PROSPECTING", "QUALIFICATION", "NEEDS_ANALYSIS", "VALUE_PROPOSITION",
        "ID_DECISION_MAKERS", "PERCEPTION_ANALYSIS", "PROPOSAL_PRICE_QUOTE",
        "NEGOTIATION_REVIEW", "CLOSED_WON", "CLOSED_LOST",
    ]
    assert field_of(blocks, "type")["options"] == ["EXISTING_BUSINESS", "NEW_BUSINESS"]
    sources = field_of(blocks, "leadSource")["options"]
    assert "OTHER" not in sources and sources[0] == "COLD_CALL"
    assert field_of(blocks, "name")["options"] is None


async def test_custom_fields_follow_in_a_last_block_with_their_definition(admin):
    # given
    await define(admin, "Region", "PICKLIST", options=REGIONS, helpText="Sales area")
    await define(admin, "Contract length (months)", "INTEGER", required=True)
    await define(admin, "Tier", "TEXT", entity="ACCOUNT")

    # when
    blocks = await layout_of(admin, "OPPORTUNITY")

    # then
    assert shape(blocks)[-1] == ("Custom fields", ["cf_region", "cf_contract_length_months"])
    assert blocks[-1]["fields"] == [
        {"key": "cf_region", "label": "Region", "type": "PICKLIST", "required": False,
         "visible": True, "readOnly": False, "options": REGIONS, "helpText": "Sales area",
         "isCustom": True},
        {"key": "cf_contract_length_months", "label": "Contract length (months)",
         "type": "INTEGER", "required": True, "visible": True, "readOnly": False,
         "options": None, "helpText": None, "isCustom": True},
    ]
    assert shape(await layout_of(admin, "ACCOUNT"))[-1] == ("Custom fields", ["cf_tier"])


async def test_a_deactivated_custom_field_leaves_the_form_and_comes_back_in_place(admin):
    # given
    await define(admin, "Region", "PICKLIST", options=REGIONS)
    await define(admin, "Seats", "INTEGER")
    arranged = blocks_with("OPPORTUNITY")
    arranged[0]["fields"].insert(2, {"key": "cf_seats", "label": "Seats sold"})
    arranged.append({"label": "Extra", "fields": [{"key": "cf_region"}]})
    assert (await set_layout(admin, "OPPORTUNITY", arranged))["userErrors"] == []

    # when
    await admin.data(DEACTIVATE, {"input": {"entity": "OPPORTUNITY", "key": "cf_seats"}})
    hidden = await layout_of(admin, "OPPORTUNITY")
    await admin.data(ACTIVATE, {"input": {"entity": "OPPORTUNITY", "key": "cf_seats"}})
    back = await layout_of(admin, "OPPORTUNITY")

    # then
    assert "cf_seats" not in [f["key"] for b in hidden for f in b["fields"]]
    assert shape(back)[0][1][:3] == ["number", "name", "cf_seats"]
    assert field_of(back, "cf_seats")["label"] == "Seats sold"
    assert shape(back)[-1] == ("Extra", ["cf_region"])


# --- updateLayout ---------------------------------------------------------------------


async def test_update_layout_renames_reorders_moves_and_relabels(admin, store, team):
    # given
    await define(admin, "Region", "PICKLIST", options=REGIONS)
    await define(admin, "Seats", "INTEGER")
    blocks = [
        {"label": "Deal", "fields": [
            {"key": "name", "label": "Deal name"}, {"key": "salesStage"},
            {"key": "expectedCloseDate"}, {"key": "amount"}, {"key": "cf_region"},
            {"key": "nextStep", "label": "Next step", "required": True},
        ]},
        {"label": "Notes", "fields": [{"key": "description"}, {"key": "lostReason"}]},
        {"label": "Customer", "fields": [
            {"key": "account"}, {"key": "contact", "label": "Main contact"},
        ]},
    ]

    # when
    payload = await set_layout(admin, "OPPORTUNITY", blocks)
    queried = await layout_of(admin, "OPPORTUNITY")

    # then
    assert payload["userErrors"] == []
    result = payload["layout"]["blocks"]
    assert result == queried
    rest = [k for k in DEFAULT_BLOCKS["OPPORTUNITY"][0][1]
            if k not in {"name", "salesStage", "expectedCloseDate", "amount", "nextStep",
                         "lostReason", "account", "contact"}]
    assert shape(result) == [
        ("Deal", ["name", "salesStage", "expectedCloseDate", "amount", "cf_region", "nextStep"]),
        ("Notes", ["description", "lostReason"]),
        ("Customer", ["account", "contact"]),
        ("Other fields", [*rest, "cf_seats"]),  # what the arrangement leaves out
    ]
    assert field_of(result, "name")["label"] == "Deal name"
    assert field_of(result, "contact")["label"] == "Main contact"
    assert field_of(result, "nextStep")["required"] is True
    assert field_of(result, "amount")["label"] == "Amount"
    [(entity, stored_blocks, _)] = await store.layouts()
    assert entity == "OPPORTUNITY"
    assert stored_blocks[0]["fields"][0] == {"key": "name", "label": "Deal name"}


async def test_a_layout_update_replaces_the_previous_one(admin):
    # given
    await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", nextStep={"required": True, "label": "Next"},
    ))

    # when
    payload = await set_layout(admin, "OPPORTUNITY", blocks_with("OPPORTUNITY"))

    # then
    result = payload["layout"]["blocks"]
    assert shape(result) == DEFAULT_BLOCKS["OPPORTUNITY"]
    assert field_of(result, "nextStep")["label"] == "Next Step"
    assert field_of(result, "nextStep")["required"] is False


async def test_a_new_custom_field_appears_after_a_saved_layout(admin):
    # given
    await set_layout(admin, "ACCOUNT", blocks_with("ACCOUNT"))

    # when
    await define(admin, "Tier", "TEXT", entity="ACCOUNT")
    blocks = await layout_of(admin, "ACCOUNT")

    # then
    assert shape(blocks) == [*DEFAULT_BLOCKS["ACCOUNT"], ("Custom fields", ["cf_tier"])]


async def test_layouts_are_per_entity(admin):
    # given
    await set_layout(admin, "CONTACT", [{"label": "All", "fields": [{"key": "lastName"}]}])

    # when
    contact = await layout_of(admin, "CONTACT")
    lead = await layout_of(admin, "LEAD")

    # then
    assert shape(contact)[0] == ("All", ["lastName"])
    assert shape(lead) == DEFAULT_BLOCKS["LEAD"]


async def test_read_only_and_optional_fields_can_be_hidden(admin):
    # when
    payload = await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", amountSource={"visible": False}, lostReason={"visible": False},
    ))

    # then
    assert payload["userErrors"] == []
    result = payload["layout"]["blocks"]
    assert field_of(result, "amountSource")["visible"] is False
    assert field_of(result, "lostReason")["visible"] is False
    assert field_of(result, "name")["visible"] is True


async def test_a_hidden_field_is_refused_on_write_and_keeps_its_value(admin, store):
    # given: a deal with a next step and a region, then both hidden
    await define(admin, "Region", "PICKLIST", options=REGIONS)
    deal = (await create(admin, "OPPORTUNITY", [{"key": "cf_region", "value": "North"}],
                         nextStep="Call"))["opportunity"]
    arranged = blocks_with("OPPORTUNITY", nextStep={"visible": False})
    arranged[0]["fields"].append({"key": "cf_region", "visible": False})
    assert (await set_layout(admin, "OPPORTUNITY", arranged))["userErrors"] == []

    # when
    created = await create(admin, "OPPORTUNITY", nextStep="Call again")
    changed = await update(admin, "OPPORTUNITY", deal["id"], nextStep="Visit")
    cleared = await update(admin, "OPPORTUNITY", deal["id"], nextStep=None)
    custom = await update(
        admin, "OPPORTUNITY", deal["id"], [{"key": "cf_region", "value": "South"}]
    )
    # a create may leave a hidden field empty, and other fields stay writable
    empty = await create(admin, "OPPORTUNITY", nextStep=None)
    other = await update(admin, "OPPORTUNITY", deal["id"], name="Renamed")

    # then
    assert errors_of(created) == [(["input", "nextStep"], "FIELD_HIDDEN")]
    assert errors_of(changed) == [(["input", "nextStep"], "FIELD_HIDDEN")]
    assert errors_of(cleared) == [(["input", "nextStep"], "FIELD_HIDDEN")]
    assert errors_of(custom) == [(["input", "customFields", "0", "key"], "FIELD_HIDDEN")]
    assert "hidden" in changed["userErrors"][0]["message"]
    assert empty["userErrors"] == [] and other["userErrors"] == []
    assert await store.custom("OPPORTUNITY", deal["id"]) == {"cf_region": "North"}
    async with store.sessions() as session:
        row = await session.get(models.Opportunity, int(pk_of(deal["id"], "Opportunity") or 0))
        assert row is not None and row.next_step == "Call"


async def test_a_hidden_field_is_refused_on_other_entities_too(admin):
    # given
    await set_layout(admin, "ACCOUNT", blocks_with("ACCOUNT", website={"visible": False}))

    # when
    refused = await create(admin, "ACCOUNT", website="https://acme.example")
    allowed = await create(admin, "ACCOUNT", city="Milano")

    # then
    assert errors_of(refused) == [(["input", "website"], "FIELD_HIDDEN")]
    assert allowed["userErrors"] == []


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([], [(["input", "blocks"], "REQUIRED")]),
        ([{"label": " ", "fields": []}], [(["input", "blocks", "0", "label"], "REQUIRED")]),
        ([{"label": "A", "fields": [{"key": "nope"}]}],
         [(["input", "blocks", "0", "fields", "0", "key"], "NOT_FOUND")]),
        ([{"label": "A", "fields": [{"key": "cf_tier"}]}],  # an account field
         [(["input", "blocks", "0", "fields", "0", "key"], "NOT_FOUND")]),
        ([{"label": "A", "fields": [{"key": "cf_legacy"}]}],  # deactivated
         [(["input", "blocks", "0", "fields", "0", "key"], "NOT_FOUND")]),
        ([{"label": "A", "fields": [{"key": "next_step"}]}],  # not the GraphQL name
         [(["input", "blocks", "0", "fields", "0", "key"], "NOT_FOUND")]),
        ([{"label": "A", "fields": [{"key": "name"}]},
          {"label": "B", "fields": [{"key": "amount"}, {"key": "name"}]}],
         [(["input", "blocks", "1", "fields", "1", "key"], "DUPLICATE")]),
        ([{"label": "A", "fields": [{"key": "name", "label": "  "}]}],
         [(["input", "blocks", "0", "fields", "0", "label"], "REQUIRED")]),
        ([{"label": "A", "fields": [{"key": "name", "required": False}]}],
         [(["input", "blocks", "0", "fields", "0", "required"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "salesStage", "visible": False}]}],
         [(["input", "blocks", "0", "fields", "0", "visible"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "number", "required": True}]}],
         [(["input", "blocks", "0", "fields", "0", "required"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "amountSource", "required": True}]}],
         [(["input", "blocks", "0", "fields", "0", "required"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "actualCloseDate", "required": True}]}],
         [(["input", "blocks", "0", "fields", "0", "required"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "nextStep", "required": True, "visible": False}]}],
         [(["input", "blocks", "0", "fields", "0", "visible"], "INVALID")]),
        ([{"label": "A", "fields": [{"key": "cf_size", "visible": False}]}],  # required cf
         [(["input", "blocks", "0", "fields", "0", "visible"], "INVALID")]),
        ([{"label": "", "fields": [{"key": "name", "required": False},
                                   {"key": "nope"}, {"key": "name"}]}],
         [(["input", "blocks", "0", "label"], "REQUIRED"),
          (["input", "blocks", "0", "fields", "0", "required"], "INVALID"),
          (["input", "blocks", "0", "fields", "1", "key"], "NOT_FOUND"),
          (["input", "blocks", "0", "fields", "2", "key"], "DUPLICATE")]),
    ],
)
async def test_update_layout_refuses_what_it_cannot_honour(admin, store, blocks, expected):
    # given
    await define(admin, "Tier", "TEXT", entity="ACCOUNT")
    await define(admin, "Legacy", "TEXT")
    await define(admin, "Size", "INTEGER", required=True)
    await admin.data(DEACTIVATE, {"input": {"entity": "OPPORTUNITY", "key": "cf_legacy"}})
    await set_layout(admin, "OPPORTUNITY", blocks_with("OPPORTUNITY"))
    before = (await store.layouts(), await store.changes())

    # when
    payload = await set_layout(admin, "OPPORTUNITY", blocks)

    # then
    assert payload["layout"] is None
    assert sorted(errors_of(payload)) == sorted(expected)
    assert (await store.layouts(), await store.changes()) == before


async def test_always_required_fields_can_be_relabelled_moved_and_restated(admin):
    # when
    payload = await set_layout(admin, "LEAD", [
        {"label": "Who", "fields": [
            {"key": "company", "label": "Organisation", "required": True, "visible": True},
            {"key": "lastName"},
        ]},
    ])

    # then
    assert payload["userErrors"] == []
    result = payload["layout"]["blocks"]
    assert shape(result)[0] == ("Who", ["company", "lastName"])
    assert field_of(result, "company")["label"] == "Organisation"


# --- enforcement --------------------------------------------------------------------------

MANDATORY: list[tuple[str, str, str, Any]] = [
    # entity, layout key, input field, a good value
    ("OPPORTUNITY", "nextStep", "nextStep", "Send the offer"),
    ("OPPORTUNITY", "probability", "probability", 35),
    ("OPPORTUNITY", "description", "description", "Why"),
    ("ACCOUNT", "website", "website", "acme.example"),
    ("ACCOUNT", "employees", "employees", 40),
    ("CONTACT", "email", "email", "ada@example.com"),
    ("CONTACT", "title", "title", "CFO"),
    ("LEAD", "phone", "phone", "+39 02 555"),
    ("LEAD", "industry", "industry", "BANKING"),
]


@pytest.mark.parametrize(("entity", "key", "input", "good"), MANDATORY,
                         ids=[f"{e}-{k}" for e, k, _, _ in MANDATORY])
async def test_a_mandatory_standard_field_is_required_on_create(admin, store, entity, key,
                                                                 input, good):
    # given
    await set_layout(admin, entity, blocks_with(entity, **{key: {"required": True}}))
    model_count_before = await store.count(_model(entity))

    # when
    missing = await create(admin, entity)
    nulled = await create(admin, entity, **{input: None})
    blank = await create(admin, entity, **{input: "  "}) if isinstance(good, str) else None
    given = await create(admin, entity, **{input: good})

    # then
    for refused in (missing, nulled, blank):
        if refused is None:
            continue
        assert refused[PAYLOAD[entity]] is None
        assert errors_of(refused) == [(["input", input], "REQUIRED")]
    assert "mandatory" in missing["userErrors"][0]["message"]
    assert given["userErrors"] == []
    assert await store.count(_model(entity)) == model_count_before + 1
    assert field_of(await layout_of(admin, entity), key)["required"] is True


# probability is never empty on a deal: null on update means "unchanged"
CLEARABLE = [m for m in MANDATORY if m[1] != "probability"]


@pytest.mark.parametrize(("entity", "key", "input", "good"), CLEARABLE,
                         ids=[f"{e}-{k}" for e, k, _, _ in CLEARABLE])
async def test_an_update_may_not_clear_a_mandatory_field_but_may_leave_it_out(
    admin, entity, key, input, good
):
    # given: one record from before the rule, one that has the field
    old = (await create(admin, entity))[PAYLOAD[entity]]
    filled = (await create(admin, entity, **{input: good}))[PAYLOAD[entity]]
    await set_layout(admin, entity, blocks_with(entity, **{key: {"required": True}}))
    other = {"OPPORTUNITY": "name", "ACCOUNT": "name", "CONTACT": "lastName",
             "LEAD": "lastName"}[entity]

    # when
    cleared = await update(admin, entity, filled["id"], **{input: None})
    blank = (await update(admin, entity, filled["id"], **{input: ""})
             if isinstance(good, str) else None)
    untouched = await update(admin, entity, old["id"], **{other: "Renamed"})

    # then
    for refused in (cleared, blank):
        if refused is None:
            continue
        assert refused[PAYLOAD[entity]] is None
        assert errors_of(refused) == [(["input", input], "REQUIRED")]
    assert untouched["userErrors"] == []


@pytest.mark.parametrize(
    ("entity", "key", "input", "make"),
    [("OPPORTUNITY", "account", "accountId", "account"),
     ("OPPORTUNITY", "campaign", "campaignId", "campaign"),
     ("CONTACT", "account", "accountId", "account"),
     ("LEAD", "campaign", "campaignId", "campaign")],
)
async def test_a_mandatory_reference_is_required_under_its_id_input(
    admin, team, factory, db, entity, key, input, make
):
    # given
    record = await getattr(factory, make)(team["admin"])
    await db.commit()
    reference = to_global_id(make.title(), record.id)
    await set_layout(admin, entity, blocks_with(entity, **{key: {"required": True}}))

    # when
    missing = await create(admin, entity)
    given = await create(admin, entity, **{input: reference})
    cleared = await update(admin, entity, given[PAYLOAD[entity]]["id"], **{input: None})

    # then
    assert errors_of(missing) == [(["input", input], "REQUIRED")]
    assert given["userErrors"] == []
    assert errors_of(cleared) == [(["input", input], "REQUIRED")]


async def test_making_a_field_optional_again_lifts_the_rule(admin):
    # given
    await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", nextStep={"required": True},
    ))

    # when
    await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", nextStep={"required": False},
    ))
    payload = await create(admin, "OPPORTUNITY")

    # then
    assert payload["userErrors"] == []


async def test_a_custom_field_made_mandatory_by_the_layout_is_required(admin):
    # given
    await define(admin, "Region", "PICKLIST", options=REGIONS)
    arranged = blocks_with("OPPORTUNITY")
    arranged[0]["fields"].append({"key": "cf_region", "required": True})
    await set_layout(admin, "OPPORTUNITY", arranged)

    # when
    missing = await create(admin, "OPPORTUNITY")
    given = await create(admin, "OPPORTUNITY", [{"key": "cf_region", "value": "North"}])
    cleared = await update(admin, "OPPORTUNITY", given["opportunity"]["id"],
                           [{"key": "cf_region", "value": None}])

    # then
    assert field_of(await layout_of(admin, "OPPORTUNITY"), "cf_region")["required"] is True
    assert errors_of(missing) == [(["input", "customFields"], "REQUIRED")]
    assert "Region" in missing["userErrors"][0]["message"]
    assert values_of(given["opportunity"]) == {"cf_region": "North"}
    assert errors_of(cleared) == [(["input", "customFields"], "REQUIRED")]


async def test_a_refusal_reports_layout_and_field_problems_together(admin):
    # given
    await define(admin, "Seats", "INTEGER")
    await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", nextStep={"required": True},
    ))

    # when
    payload = await create(admin, "OPPORTUNITY", [{"key": "cf_seats", "value": "many"}],
                           name="")

    # then
    assert sorted(errors_of(payload)) == sorted([
        (["input", "name"], "REQUIRED"), (["input", "nextStep"], "REQUIRED"),
        (["input", "customFields", "0", "value"], "INVALID"),
    ])


async def test_a_conversion_still_works_when_the_deal_form_has_a_mandatory_field(
    admin, team, factory, db
):
    # given
    lead = await factory.lead(team["admin"])
    await db.commit()
    fields = await admin.data(
        '{ __type(name: "ConvertLeadOpportunityInput") { inputFields { name } } }'
    )
    takes_next_step = "nextStep" in {f["name"] for f in fields["__type"]["inputFields"]}
    await set_layout(admin, "OPPORTUNITY", blocks_with(
        "OPPORTUNITY", nextStep={"required": True},
    ))
    deal = {"expectedCloseDate": "2027-06-30", "salesStage": "PROSPECTING"}
    if takes_next_step:
        deal["nextStep"] = "Kick-off call"

    # when
    data = await admin.data(
        "mutation C($input: ConvertLeadInput!) { convertLead(input: $input) { "
        "opportunity { name } userErrors { field code } } }",
        {"input": {"leadId": to_global_id("Lead", lead.id), "opportunity": deal}},
    )

    # then
    assert data["convertLead"]["userErrors"] == []
    assert data["convertLead"]["opportunity"] is not None


# --- admin only, audit ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["manager", "rep"])
async def test_update_layout_is_admin_only(admin, team, client_for, store, who):
    # given
    await set_layout(admin, "OPPORTUNITY", blocks_with("OPPORTUNITY"))
    before = (await store.layouts(), await store.changes())
    client = await client_for(team[who])

    # when
    body = await client.query(UPDATE_LAYOUT, {"input": {"entity": "OPPORTUNITY", "blocks": [
        {"label": "Mine", "fields": [{"key": "name"}]},
    ]}})

    # then
    assert body["data"] is None
    error = only_error(body)
    assert (error["extensions"]["code"], error["path"]) == ("FORBIDDEN", ["updateLayout"])
    assert (await store.layouts(), await store.changes()) == before


async def test_layout_changes_are_audited_with_before_and_after(admin, team, store):
    # given
    first = blocks_with("OPPORTUNITY", nextStep={"required": True})
    second = [{"label": "Short", "fields": [{"key": "name", "label": "Deal"}]}]
    started = dt.datetime.now(dt.UTC)

    # when
    await set_layout(admin, "OPPORTUNITY", first)
    await set_layout(admin, "OPPORTUNITY", second)
    await set_layout(admin, "OPPORTUNITY", [])  # refused: no audit row
    data = await admin.data(CHANGES, {"kind": "LAYOUT", "first": 10})

    # then
    rows = data["configurationChanges"]["nodes"]
    assert [(r["kind"], r["scope"], r["key"], r["action"]) for r in rows] == [
        ("LAYOUT", "OPPORTUNITY", None, "UPDATE"), ("LAYOUT", "OPPORTUNITY", None, "UPDATE"),
    ]
    newest, oldest = rows
    assert oldest["before"] is None
    assert oldest["after"][0]["label"] == "Opportunity information"
    assert {"key": "nextStep", "required": True} in oldest["after"][0]["fields"]
    assert newest["before"] == oldest["after"]
    assert newest["after"] == [{"label": "Short", "fields": [{"key": "name", "label": "Deal"}]}]
    for row in rows:
        assert row["changedBy"] == {"username": "admin"}
        assert dt.datetime.fromisoformat(row["changedAt"]) >= started - dt.timedelta(seconds=1)
    [(_, _, updated_at)] = await store.layouts()
    assert updated_at >= started - dt.timedelta(seconds=1)


async def test_two_admins_saving_the_first_layout_at_once_both_succeed(team, client_for, store):
    # given
    first, second = await client_for(team["admin"]), await client_for(team["admin"])
    mine = [{"label": "Mine", "fields": [{"key": "name"}]}]
    theirs = [{"label": "Theirs", "fields": [{"key": "amount"}]}]

    # when
    bodies = await asyncio.gather(
        first.query(UPDATE_LAYOUT, {"input": {"entity": "OPPORTUNITY", "blocks": mine}}),
        second.query(UPDATE_LAYOUT, {"input": {"entity": "OPPORTUNITY", "blocks": theirs}}),
    )

    # then: one replaced the other, and the audit says so (never a top-level error)
    assert all("errors" not in body for body in bodies), bodies
    assert all(b["data"]["updateLayout"]["userErrors"] == [] for b in bodies)
    changes = await store.changes()
    assert [c[0] for c in changes] == ["LAYOUT", "LAYOUT"]
    (_, _, _, _, before_1, after_1, _), (_, _, _, _, before_2, after_2, _) = changes
    assert before_1 is None and before_2 == after_1
    [(_, final, _)] = await store.layouts()
    assert final == after_2 and {after_1[0]["label"], after_2[0]["label"]} == {"Mine", "Theirs"}


# --- the "Done when" ---------------------------------------------------------------

STAGES = "{ salesStages { key name probability } }"
UPDATE_PICKLIST_VALUE = """
mutation P($input: UpdatePicklistValueInput!) {
  updatePicklistValue(input: $input) {
    salesStage { key name probability }
    userErrors { field code message }
  }
}
"""
FORM_DEAL = """
mutation C($input: CreateOpportunityInput!) {
  createOpportunity(input: $input) {
    opportunity { name nextStep probability salesStage { key name }
                  customFields { key label type value } }
    userErrors { field code message }
  }
}
"""


async def _has_mutation(client: GraphQLClient, name: str) -> bool:
    data = await client.data("{ __schema { mutationType { fields { name } } } }")
    return name in {f["name"] for f in data["__schema"]["mutationType"]["fields"]}


async def test_done_when_an_admin_customises_the_deal_form_and_the_api_follows_it(
    admin, team, client_for, store
):
    # given: the admin adds two fields, makes "Next step" mandatory, renames a stage
    await define(admin, "Region", "PICKLIST", options=["North", "South", "Centre", "Islands"])
    await define(admin, "Contract length (months)", "INTEGER")
    arranged = blocks_with("OPPORTUNITY", nextStep={"required": True})
    arranged[0]["fields"].extend([{"key": "cf_region"}, {"key": "cf_contract_length_months"}])
    assert (await set_layout(admin, "OPPORTUNITY", arranged))["userErrors"] == []
    assert await _has_mutation(admin, "updatePicklistValue")
    renamed = (await admin.data(UPDATE_PICKLIST_VALUE, {"input": {
        "picklist": "salesStage", "key": "QUALIFICATION", "label": "Discovery",
        "probability": "15",
    }}))["updatePicklistValue"]
    assert renamed["userErrors"] == []
    assert renamed["salesStage"] == {"key": "QUALIFICATION", "name": "Discovery",
                                     "probability": "15.00"}
    rep = await client_for(team["rep"])

    # when: a client builds its form from the layout
    form = await layout_of(rep, "OPPORTUNITY")
    stages = {s["key"]: s for s in (await rep.data(STAGES))["salesStages"]}

    # then: the form shows exactly that
    [info, description] = form
    keys = [f["key"] for f in info["fields"]]
    assert keys[-2:] == ["cf_region", "cf_contract_length_months"]
    assert field_of(form, "cf_region") == {
        "key": "cf_region", "label": "Region", "type": "PICKLIST", "required": False,
        "visible": True, "readOnly": False, "options": ["North", "South", "Centre", "Islands"],
        "helpText": None, "isCustom": True,
    }
    assert field_of(form, "cf_contract_length_months") == {
        "key": "cf_contract_length_months", "label": "Contract length (months)",
        "type": "INTEGER", "required": False, "visible": True, "readOnly": False,
        "options": None, "helpText": None, "isCustom": True,
    }
    assert field_of(form, "nextStep")["required"] is True
    assert {f["key"] for f in info["fields"] if f["required"]} == {
        "name", "expectedCloseDate", "salesStage", "nextStep",
    }
    assert "QUALIFICATION" in field_of(form, "salesStage")["options"]
    assert stages["QUALIFICATION"]["name"] == "Discovery"
    assert stages["QUALIFICATION"]["probability"] == "15.00"
    assert description["fields"][0]["key"] == "description"

    # and the API refuses what the form forbids
    base = {"name": "Big deal", "expectedCloseDate": "2027-09-30",
            "salesStage": "QUALIFICATION"}
    refused = (await rep.data(FORM_DEAL, {"input": {**base, "customFields": [
        {"key": "cf_region", "value": "Atlantis"},
        {"key": "cf_contract_length_months", "value": 1.5},
    ]}}))["createOpportunity"]
    assert refused["opportunity"] is None
    assert sorted(errors_of(refused)) == sorted([
        (["input", "nextStep"], "REQUIRED"),
        (["input", "customFields", "0", "value"], "INVALID"),
        (["input", "customFields", "1", "value"], "INVALID"),
    ])
    assert await store.count(_model("OPPORTUNITY")) == 0

    # and accepts what it allows, with the stage's new default probability
    accepted = (await rep.data(FORM_DEAL, {"input": {**base, "nextStep": "Demo", "customFields": [
        {"key": "cf_region", "value": "Islands"},
        {"key": "cf_contract_length_months", "value": 24},
    ]}}))["createOpportunity"]
    assert accepted["userErrors"] == []
    deal = accepted["opportunity"]
    assert deal["salesStage"] == {"key": "QUALIFICATION", "name": "Discovery"}
    assert Decimal(deal["probability"]) == Decimal("15")
    assert deal["nextStep"] == "Demo"
    assert deal["customFields"] == [
        {"key": "cf_region", "label": "Region", "type": "PICKLIST", "value": "Islands"},
        {"key": "cf_contract_length_months", "label": "Contract length (months)",
         "type": "INTEGER", "value": 24},
    ]
    audit = (await admin.data(CHANGES, {"first": 20}))["configurationChanges"]["nodes"]
    assert [(c["kind"], c["action"]) for c in reversed(audit)] == [
        ("CUSTOM_FIELD", "CREATE"), ("CUSTOM_FIELD", "CREATE"), ("LAYOUT", "UPDATE"),
        ("PICKLIST", "UPDATE"),
    ]


async def _selection(client: GraphQLClient, type_name: str, depth: int = 2) -> str:
    """Every field of a type (objects expanded `depth` levels), for a shape-agnostic read."""
    data = await client.data(f"""{{ __type(name: "{type_name}") {{ fields {{
        name args {{ name }} type {{ kind name ofType {{ kind name ofType {{ kind name
        ofType {{ kind name }} }} }} }} }} }} }}""")
    parts = []
    for f in data["__type"]["fields"]:
        if f["args"]:
            continue
        t = f["type"]
        while t.get("ofType"):
            t = t["ofType"]
        if t["kind"] in ("OBJECT", "INTERFACE"):
            if depth > 0:
                parts.append(f"{f['name']} {{ {await _selection(client, t['name'], depth - 1)} }}")
        else:
            parts.append(f["name"])
    return " ".join(parts)


async def test_the_layout_alone_shows_a_renamed_stages_label(admin):
    # given
    await admin.data(UPDATE_PICKLIST_VALUE, {"input": {
        "picklist": "salesStage", "key": "QUALIFICATION", "label": "Discovery",
    }})
    selection = await _selection(admin, "LayoutField")

    # when
    data = await admin.data(f"""{{ layout(entity: OPPORTUNITY) {{ blocks {{ fields {{
        {selection} }} }} }} }}""")

    # then: the stage field says "Discovery" somewhere, whatever the field is called
    [stage] = [f for b in data["layout"]["blocks"] for f in b["fields"]
               if f["key"] == "salesStage"]
    assert "Discovery" in repr(stage)


def _model(entity: str) -> Any:
    return {"OPPORTUNITY": models.Opportunity, "ACCOUNT": models.Account,
            "CONTACT": models.Contact, "LEAD": models.Lead}[entity]
