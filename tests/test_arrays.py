"""stitcher/arrays.py builds the few Arrow arrays a run makes from buffers (no pandas import):
they must equal what pyarrow's own converters make, for every value, null and slice."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from stitcher import arrays

TEXT = st.one_of(st.none(), st.text(max_size=12))


@given(st.lists(TEXT, max_size=40))
def test_string_array_equals_pyarrows(values: list[str | None]) -> None:
    built = arrays.string_array(values)
    built.validate(full=True)
    assert built.equals(pa.array(values, pa.string()))
    assert built.to_pylist() == values


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40))
def test_int64_array_round_trips(values: list[int]) -> None:
    built = arrays.int64_array(np.array(values, dtype=np.int64))
    built.validate(full=True)
    assert built.to_pylist() == values


@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=6), max_size=5), st.data())
def test_int_values_reads_chunks_and_slices(chunks: list[list[int]], data) -> None:
    column = pa.chunked_array([pa.array(c, pa.int64()) for c in chunks], pa.int64())
    flat = [v for c in chunks for v in c]
    assert arrays.int_values(column).tolist() == flat
    start = data.draw(st.integers(0, len(flat)))
    sliced = pa.array(flat, pa.int64()).slice(start)
    assert arrays.int_values(sliced).tolist() == flat[start:]


def test_int_values_keeps_the_width_and_refuses_nulls_and_other_types() -> None:
    for kind in (pa.int8(), pa.int32(), pa.uint16(), pa.int64()):
        values = arrays.int_values(pa.array([1, 2, 3], kind).slice(1))
        assert values.tolist() == [2, 3]
        assert values.dtype.itemsize * 8 == kind.bit_width
    for column in (pa.array([1, None], pa.int64()), pa.array([1.0], pa.float64())):
        try:
            arrays.int_values(column)
        except ValueError:
            continue
        raise AssertionError(f"accepted {column.type} with {column.null_count} nulls")


def test_table_keeps_names_and_order() -> None:
    table = arrays.table({"b": arrays.string_array(["x"]), "a": arrays.string_array([None])})
    assert table.column_names == ["b", "a"]
    assert table.to_pylist() == [{"b": "x", "a": None}]
