"""Integer keys for the two string columns the rules work on: customer ids and tier names.

At a million customers, every operation on strings costs a noticeable fraction of a second, so:
- `nominate` sorts the customer ids once (`id_ranks`, which also finds duplicates) and matches
  them against other tables once (`positions`); every ranked list then breaks ties with the
  integer id rank (`ranked_order`), which orders exactly as sorting by the ids themselves would;
- tiers are handled as their rank in `TIERS` (0 = Base ... 3 = Platinum): `tier_ranks` turns names
  into ranks, `tier_names` / `TIER_NAMES` turn ranks back into names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segments.settings import TIER_RANK, TIERS

#: Tier names by rank, for turning an array of ranks into names with one `take`.
TIER_NAMES = np.array(TIERS, dtype=object)
_TIER_NAMES_ARROW = pa.array(TIERS, type=pa.large_string())
#: The dtype pandas gives a column of tier names built from Python strings (`str` in pandas 3).
TEXT_DTYPE = pd.Series(TIER_NAMES).dtype


def id_ranks(ids: pd.Series) -> np.ndarray:
    """Each id's position in ascending id order, the same order `DataFrame.sort_values` gives.

    Equal ids share a rank (dense ranking), so the ids are unique exactly when the highest rank is
    len(ids) - 1. NaN must have been ruled out before.
    """
    arrow = _arrow_strings(ids)
    if arrow is None:
        return pd.factorize(ids, sort=True)[0]
    keys = _numpy_keys(arrow)
    if keys is not None:
        order = np.argsort(keys[0])  # equal ids get one rank, so any sort will do
        ordered = keys[0][order]
        differs = ordered[1:] != ordered[:-1]
    else:
        order = pc.array_sort_indices(arrow).to_numpy()
        ordered = arrow.take(pa.array(order))
        differs = ~pc.equal(ordered[1:], ordered[:-1]).to_numpy(zero_copy_only=False)
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = differs
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.cumsum(starts) - 1
    return ranks


def positions(ids: pd.Series | pd.Index, lookup: pd.Series | pd.Index) -> np.ndarray:
    """The row of each of `ids` in `lookup` (whose values are unique), -1 where it is absent."""
    arrow_ids, arrow_lookup = _arrow_strings(ids), _arrow_strings(lookup)
    if arrow_ids is None or arrow_lookup is None:
        return pd.Index(lookup).get_indexer(ids)
    keys, lookup_keys = _numpy_keys(arrow_ids), _numpy_keys(arrow_lookup)
    if keys is not None and lookup_keys is not None and keys[1] == lookup_keys[1]:
        return _sorted_match(keys[0], lookup_keys[0])
    found = pc.index_in(arrow_ids, value_set=arrow_lookup)
    return found.fill_null(-1).to_numpy().astype(np.intp)


def same_values(ids: pd.Series | pd.Index, other: pd.Series | pd.Index) -> bool:
    """Whether two id columns hold the same values in the same order (a cheap test, no hashing)."""
    if len(ids) != len(other):
        return False
    arrow_ids, arrow_other = _arrow_strings(ids), _arrow_strings(other)
    if arrow_ids is not None and arrow_other is not None:
        return pc.all(pc.equal(arrow_ids, arrow_other), skip_nulls=False).as_py() is True
    return bool(pd.Index(ids).equals(pd.Index(other)))


# Float keys are compared to this many decimals: a sum that DuckDB and Spark (or two DuckDB thread
# counts) add up in another order differs in the last bits, and the rank of two customers with the
# same spend would then depend on the engine; equal to 6 decimals, the customer id decides.
RANK_DECIMALS = 6

# Money is compared and reported to this many decimals (finer than any currency's unit): spend is a
# sum of binary floats, so orders of 155.57 + 574.31 + 1270.12 add up to 1999.9999999999998 and a
# customer at exactly a $2,000 threshold fell short of it by 2e-13.
MONEY_DECIMALS = 6


def money(values):
    """Amounts rounded to MONEY_DECIMALS (a Series, an array or a float)."""
    return np.round(values, MONEY_DECIMALS)


def ranked_order(keys: list[tuple[np.ndarray | pd.Series, bool]], id_rank: np.ndarray) -> np.ndarray:
    """Row order sorting by each (values, ascending) numeric key in turn, then by `id_rank`.

    The same order as `DataFrame.sort_values(..., kind="mergesort")` with the customer ids as the
    last key. Rows of one customer must differ in some key, so the order is total and does not
    depend on the input row order. Floats (to RANK_DECIMALS) sort descending by negation, NaN last either way,
    integers by bitwise not, as in pandas. Starting from id order, each key from the least
    significant up is a stable sort.
    """
    id_rank = np.asarray(id_rank)
    n = len(id_rank)
    if n and id_rank.max() == n - 1 and (np.bincount(id_rank, minlength=n) == 1).all():
        order = np.empty(n, dtype=np.intp)  # every customer once: invert the permutation
        order[id_rank] = np.arange(n)
    else:
        order = np.argsort(id_rank)  # ties are settled by the keys
    for values, ascending in reversed(keys):
        key = np.asarray(values)[order]
        if key.dtype.kind == "f":
            key = np.round(key, RANK_DECIMALS)
        if not ascending:
            key = -key if key.dtype.kind == "f" else ~key
        order = order[np.argsort(key, kind="stable")]
    return order


def tier_ranks(names: pd.Series | np.ndarray) -> np.ndarray:
    """The rank of each tier name (0 = Base ... 3 = Platinum), -1 for anything that is not a tier."""
    codes, uniques = pd.factorize(names)
    lookup = np.array([TIER_RANK.get(name, -1) for name in uniques] + [-1], dtype=np.int8)
    return lookup[codes]


def tier_names(ranks: np.ndarray, index: pd.Index | None = None) -> pd.Series:
    """Tier names for ranks, as the text column pandas would build from the Python strings."""
    ranks = np.asarray(ranks)
    if isinstance(TEXT_DTYPE, pd.StringDtype) and TEXT_DTYPE.storage == "pyarrow":
        values = pd.array(_TIER_NAMES_ARROW.take(pa.array(ranks)), dtype=TEXT_DTYPE)
        return pd.Series(values, index=index, copy=False)
    return pd.Series(TIER_NAMES[ranks], index=index)


def _numpy_keys(arrow: pa.Array) -> tuple[np.ndarray, int] | None:
    """(NumPy keys that sort and compare exactly as the strings do, their byte length), or None.

    Strings sort in the byte order of their UTF-8 (code point order), as pandas sorts str. When all
    strings have one byte length (ids usually do), that is the order of their bytes as NumPy
    fixed-width bytes, read in place from arrow's buffer, and for up to 8 bytes the order of those
    bytes as a big-endian 64-bit integer: sorting and matching integers is about ten times as fast
    as arrow's string sort and hash lookup. Keys only compare between strings of one byte length.
    """
    if arrow.null_count or len(arrow) == 0:
        return None
    offset_type = np.int64 if pa.types.is_large_string(arrow.type) else np.int32
    offsets = np.frombuffer(arrow.buffers()[1], dtype=offset_type)[arrow.offset : arrow.offset + len(arrow) + 1]
    width = int(offsets[1] - offsets[0])
    if width == 0 or not (np.diff(offsets) == width).all():
        return None
    fixed = np.frombuffer(arrow.buffers()[2], dtype=f"S{width}", count=len(arrow), offset=int(offsets[0]))
    if width > 8:
        return fixed, width
    # Padding every string with the same zero bytes keeps their order.
    return fixed.astype("S8").view(">u8").astype(np.uint64), width


def _sorted_match(keys: np.ndarray, lookup: np.ndarray) -> np.ndarray:
    """The position of each of `keys` in `lookup` (unique), -1 where absent: a merge of the two
    sorted arrays (binary searches in sorted order stay in cache, unlike random ones)."""
    rows = np.full(len(keys), -1, dtype=np.intp)
    if len(lookup) == 0:
        return rows
    lookup_order = np.argsort(lookup)
    sorted_lookup = lookup[lookup_order]
    key_order = np.argsort(keys)
    sorted_keys = keys[key_order]
    at = np.minimum(np.searchsorted(sorted_lookup, sorted_keys), len(lookup) - 1)
    found = sorted_lookup[at] == sorted_keys
    rows[key_order[found]] = lookup_order[at[found]]
    return rows


def _arrow_strings(values: pd.Series | pd.Index) -> pa.Array | None:
    """The pyarrow array behind a pyarrow-backed string column, or None for any other column."""
    dtype = values.dtype
    if not (isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"):
        return None
    chunked = values.array._pa_array
    return chunked.chunk(0) if chunked.num_chunks == 1 else chunked.combine_chunks()
