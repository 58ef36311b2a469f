"""Arrow arrays the pipeline builds itself, assembled from buffers.

pyarrow imports pandas the first time it converts Python objects or numpy arrays (`pa.array`,
`pa.table` over lists, `pa.scalar`): it checks whether the value is a pandas Series. That
import took ~0.15 s of a run's ~1 s fixed cost, and a run uses pandas nowhere else, so the
few arrays a default run makes (the junk values, the component labels) are built here from
buffers, which pyarrow takes as they are. `tests/test_layout.py` checks that a run imports
no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def int64_array(values: np.ndarray) -> pa.Array:
    """An int64 Arrow array over `values` (no nulls)."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def string_array(values: Sequence[str | None]) -> pa.Array:
    """A string Arrow array of `values`; None is null."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string(),
        len(encoded),
        [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
        null_count=int(len(valid) - valid.sum()),
    )


def table(columns: dict[str, pa.Array]) -> pa.Table:
    """An Arrow table of named arrays."""
    return pa.Table.from_arrays(list(columns.values()), names=list(columns))


def int_values(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an integer column without nulls, as numpy of the same width (a view
    where it can be)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.nulls(0, column.type)
    if not pa.types.is_integer(column.type) or column.null_count:
        raise ValueError(f"expected integers without nulls, got {column.type}")
    kind = "i" if pa.types.is_signed_integer(column.type) else "u"
    dtype = np.dtype(f"{kind}{column.type.bit_width // 8}")
    data = column.buffers()[1]
    if data is None or len(column) == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(
        data, dtype=dtype, count=len(column), offset=column.offset * dtype.itemsize
    )
