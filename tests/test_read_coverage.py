"""Every field of the read schema is planned (issue 14): for each field reachable from the
query root, a query selecting it (by the shortest path from the root, with placeholder
arguments) must compile into a plan, or the field must be on ALLOWED, with its reason.

The plans are only compiled, not run: whether a plan answers as graphql-core does is the
differential tests' job (tests/test_planner.py)."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLUnionType,
    get_named_type,
    is_leaf_type,
    parse,
)

from planner import Plans, Unsupported
from server.settings import Settings
from server.view import create_schema

pytestmark = pytest.mark.no_database

# Fields graphql-core keeps, and why (the "short, documented allow-list"); the
# fields below them are theirs too.
ALLOWED: dict[str, str] = {}


def placeholder(arg_type: Any) -> str | None:
    """A literal for a required argument (None: the argument is optional)."""
    if not isinstance(arg_type, GraphQLNonNull):
        return None
    inner = arg_type.of_type
    if isinstance(inner, GraphQLList):
        item = placeholder(GraphQLNonNull(get_named_type(inner)))
        return f"[{item}]"
    if isinstance(inner, GraphQLEnumType):
        return next(iter(inner.values))
    if isinstance(inner, GraphQLInputObjectType):
        fields = [f"{n}: {v}" for n, f in inner.fields.items()
                  if (v := placeholder(f.type)) is not None]
        return "{" + ", ".join(fields) + "}"
    return {"Int": "1", "Float": "1", "Boolean": "true", "Decimal": '"1"',
            "Date": '"2026-01-01"', "DateTime": '"2026-01-01T00:00:00Z"'}.get(inner.name, '"x"')


def arguments(field: Any) -> str:
    given = [f"{n}: {v}" for n, a in field.args.items() if (v := placeholder(a.type)) is not None]
    return f"({', '.join(given)})" if given else ""


def selection(named: Any, schema: Any) -> str:
    """What to select below a field of type `named` (nothing for a leaf)."""
    if is_leaf_type(named):
        return ""
    return " { __typename }"


Step = tuple[str, str, str | None]  # field name, its arguments, an inline fragment's type


def reachable(schema: Any, allowed: Any = ()) -> list[tuple[str, str, list[Step]]]:
    """(type, field, path) for every field reachable from Query by read fields, except
    below the `allowed` ones: the path is the fields from the root to the type."""
    query = schema.query_type
    found = []
    seen: set[str] = set()
    todo: deque[tuple[Any, list[Step]]] = deque([(query, [])])
    while todo:
        gql_type, path = todo.popleft()
        if gql_type.name in seen:
            continue
        seen.add(gql_type.name)
        for name, field in gql_type.fields.items():
            if name.startswith("__"):
                continue
            found.append((gql_type.name, name, path))
            if f"{gql_type.name}.{name}" in allowed:
                continue
            named = get_named_type(field.type)
            step = (name, arguments(field))
            if isinstance(named, GraphQLObjectType):
                todo.append((named, [*path, (*step, None)]))
            elif isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
                for possible in schema.get_possible_types(named):
                    todo.append((possible, [*path, (*step, possible.name)]))
    return found


def query_for(path: list[Step], field: str, args: str,
              leaf: str) -> str:
    text = f"{field}{args}{leaf}"
    for name, step_args, fragment in reversed(path):
        inner = f"... on {fragment} {{ {text} }}" if fragment else text
        text = f"{name}{step_args} {{ {inner} }}"
    return "{ " + text + " }"


def unplanned() -> dict[str, str]:
    strawberry_schema = create_schema(Settings(planner="on"))
    schema = strawberry_schema._schema
    plans = Plans(strawberry_schema)
    missing = {}
    for type_name, name, path in reachable(schema, ALLOWED):
        field = schema.type_map[type_name].fields[name]
        query = query_for(path, name, arguments(field),
                          selection(get_named_type(field.type), schema))
        document = parse(query)
        variables = plans.variables(document, None, {})
        try:
            plans._compile(document, None, variables)
        except Unsupported as why:
            missing[f"{type_name}.{name}"] = f"{why} — {query}"
    return missing


def test_the_check_sees_an_unplanned_field() -> None:
    # a query the planner cannot answer (a mutation type's field at the root) is reported
    strawberry_schema = create_schema(Settings(planner="on"))
    plans = Plans(strawberry_schema)
    document = parse("mutation { __typename }")
    with pytest.raises(Unsupported):
        plans._compile(document, None, plans.variables(document, None, {}))
    # and the walk reaches deep fields (a quote line's product, through the deals)
    paths = {(t, f) for t, f, _ in reachable(strawberry_schema._schema)}
    assert ("QuoteLine", "product") in paths and ("Forecast", "buckets") in paths


def test_every_read_field_is_planned() -> None:
    missing = unplanned()
    unexpected = {k: v for k, v in missing.items() if k not in ALLOWED}
    assert unexpected == {}, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert set(ALLOWED) <= set(missing), "an allowed field is planned now: drop it from ALLOWED"
