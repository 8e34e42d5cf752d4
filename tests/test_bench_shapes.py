"""bench/shapes.py: every shape is a valid dealgraph query, and the row comparison between
dealgraph's and PostGraphile's answers finds what differs (and only that)."""

import sys
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import shapes  # noqa: E402  (bench/shapes.py)

pytestmark = pytest.mark.no_database

SCHEMA = build_schema((BENCH.parent / "schema.graphql").read_text())


def test_every_shape_is_a_valid_dealgraph_query() -> None:
    loaded = shapes.load_shapes(None)
    names = {shape.name for shape in loaded}
    assert {"pipeline", "viewer", "node_lookup", "contacts_deals", "quotes_lines"} <= names
    for shape in loaded:
        errors = validate(SCHEMA, parse(shape.query))
        assert not errors, f"{shape.name}: {errors}"
    # positive control: a shape written in PostGraphile's names is refused
    pipeline = next(shape for shape in loaded if shape.name == "pipeline")
    assert validate(SCHEMA, parse(pipeline.twin))


def test_unknown_shapes_are_refused_by_name() -> None:
    with pytest.raises(shapes.BenchError, match="unknown shapes nope"):
        shapes.load_shapes(["nope"])


DEALGRAPH = {"opportunities": {"totalCount": 2, "edges": [
    {"cursor": "x", "node": {"id": "T3Bwb3J0dW5pdHk6MQ", "number": "POT1", "amount": "10.50",
                             "weightedAmount": "5.25",
                             "contacts": [{"role": "A", "contact": {"lastName": "Rossi"}},
                                          {"role": "B", "contact": {"lastName": "Bianchi"}}]}},
    {"cursor": "y", "node": {"id": "T3Bwb3J0dW5pdHk6Mg", "number": "POT2", "amount": "3",
                             "contacts": []}},
]}}
POSTGRAPHILE = {"allOpportunities": {"totalCount": 2, "edges": [
    {"cursor": "z", "node": {"id": "WyJPcHBvcnR1bml0eSIsMV0=", "number": "POT1", "amount": "10.5",
                             "links": {"nodes": [
                                 {"role": "B", "contactByContactId": {"lastName": "Bianchi"}},
                                 {"role": "A", "contactByContactId": {"lastName": "Rossi"}}]}}},
    {"cursor": "w", "node": {"id": "WyJPcHBvcnR1bml0eSIsMl0=", "number": "POT2", "amount": "3.00",
                             "links": {"nodes": []}}},
]}}


def test_the_same_rows_in_both_schemas_compare_equal() -> None:
    mine = shapes.rows(DEALGRAPH, frozenset({"opportunities.contacts"}))
    theirs = shapes.rows(POSTGRAPHILE, frozenset({"links"}))
    assert shapes.first_difference(mine, theirs) is None
    assert mine[:3] == ["totalCount=2", "id=Opportunity:1", "number=POT1"]


def test_a_difference_is_found_and_named() -> None:
    unordered = frozenset({"links"})
    swapped = {"allOpportunities": {**POSTGRAPHILE["allOpportunities"],
                                    "edges": POSTGRAPHILE["allOpportunities"]["edges"][::-1]}}
    mine = shapes.rows(DEALGRAPH, frozenset({"opportunities.contacts"}))
    found = shapes.first_difference(mine, shapes.rows(swapped, unordered))
    assert found is not None and "id=Opportunity:1" in found
    # without the unordered entry, the contacts' order counts
    strict = shapes.first_difference(shapes.rows(DEALGRAPH, frozenset()),
                                     shapes.rows(POSTGRAPHILE, frozenset()))
    assert strict is not None and "role=A" in strict


def test_an_answer_without_rows_is_refused() -> None:
    shape = shapes.Shape("empty", "", "", {})
    with pytest.raises(shapes.BenchError, match="no rows"):
        shapes.shape_rows(shape, {"opportunities": {"totalCount": 0, "nodes": []}})
