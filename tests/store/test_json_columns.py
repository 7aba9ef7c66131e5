"""The JSON columns' text: orjson's where it can, the standard library's where it cannot, and
either read back by either."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.store import json_columns

# What the columns hold: lists and objects of strings (lone surrogates included: undecodable
# bytes a client sent, read with surrogateescape), integers, booleans and nulls.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=20,
)


@given(_VALUES)
def test_a_value_reads_back_as_written(value: Any) -> None:
    assert json_columns.loads(json_columns.dumps(value)) == value


@given(_VALUES)
def test_the_standard_library_reads_what_is_written_and_the_other_way(value: Any) -> None:
    assert json.loads(json_columns.dumps(value)) == value
    assert json_columns.loads(json.dumps(value)) == value
    assert json_columns.loads(json.dumps(value).encode()) == value


def test_lone_surrogates_and_big_integers_are_written_by_the_standard_library() -> None:
    for value in (["06\udcc3"], {"tel": "\udcff"}, 2**70):
        assert json_columns.dumps(value) == json.dumps(value)
        assert json_columns.loads(json_columns.dumps(value)) == value


def test_results_are_written_compact_and_in_utf_8() -> None:
    results = [{"tel": "0601020304", "code": 0, "message": "Envoi réussi"}]
    assert json_columns.dumps(results) == (
        '[{"tel":"0601020304","code":0,"message":"Envoi réussi"}]'
    )
