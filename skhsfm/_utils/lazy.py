"""Lazy inputs: dask arrays and numpy memmaps, read only where rows are needed.

A head given a lazy ``X`` (a ``dask.array.Array`` or a ``numpy.memmap``) keeps
it lazy: :func:`check_lazy_X` validates the shape and dtype without reading,
:class:`LazyRows` stands for a set of its rows (a pool), :func:`read_rows`
reads several such sets in one pass (one ``dask.compute``), and
:func:`iter_row_blocks` streams the rows of a pool block by block in the same
blocks an in-memory array would give, so statistics computed from them are the
same for lazy and in-memory input. Values read are checked to be finite.

Labels and groups are always in memory. dask is imported only to compute.
"""

import numpy as np

__all__ = [
    "LAZY_SAMPLE_BYTES",
    "LazyRows",
    "check_lazy_X",
    "default_sample_size",
    "is_dask_array",
    "is_lazy",
    "iter_row_blocks",
    "lazy_map_rows",
    "read_rows",
    "sample_rows",
]

#: Bytes of rows an ``"auto"`` sample reads from a lazy ``X`` (at least
#: :data:`MIN_AUTO_SAMPLE` rows).
LAZY_SAMPLE_BYTES = 128 * 2**20
MIN_AUTO_SAMPLE = 10_000


def is_dask_array(X):
    """Whether ``X`` is a dask array (without importing dask)."""
    return (
        type(X).__module__.split(".")[0] == "dask"
        and hasattr(X, "chunks")
        and hasattr(X, "compute")
    )


def is_lazy(X):
    """Whether ``X`` is read on demand: a dask array or a numpy memmap."""
    return isinstance(X, (np.memmap, LazyRows)) or is_dask_array(X)


def _float_dtype(dtype):
    """float32 and float64 stay; other numeric dtypes are read as float64."""
    dtype = np.dtype(dtype)
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def check_lazy_X(estimator, X, name="X", *, reset):
    """Validate a lazy 2-d array without reading it; return it.

    With ``reset`` sets ``n_features_in_`` (and drops ``feature_names_in_``),
    else checks ``n_features_in_`` as ``validate_data(reset=False)`` does.
    """
    shape = tuple(X.shape)
    if len(shape) != 2:
        raise ValueError(
            f"{name} must be 2-dimensional (n_samples, n_features); got a lazy "
            f"array of shape {shape}."
        )
    if any(np.isnan(size) for size in shape):
        raise ValueError(
            f"{name} is a dask array with unknown chunk sizes {shape}; call "
            f"{name}.compute_chunk_sizes() first."
        )
    if np.dtype(X.dtype).kind not in "biuf":
        raise ValueError(
            f"{name} has dtype {X.dtype}; embeddings must be numeric (float32 or "
            "float64)."
        )
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"{name} has shape {shape}; it needs rows and columns.")
    if reset:
        estimator.n_features_in_ = int(shape[1])
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"{name} has {shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input."
        )
    return X


class LazyRows:
    """Some rows of a lazy 2-d array, not read yet.

    Parameters
    ----------
    data : dask array or numpy memmap of shape (n, d)
    index : ndarray of int, sorted
        The rows of ``data`` this stands for.
    name : str
        The argument ``data`` came from, for messages.
    """

    def __init__(self, data, index=None, name="X"):
        self.data = data
        self.index = (
            np.arange(data.shape[0]) if index is None else np.asarray(index, dtype=int)
        )
        self.name = name

    @property
    def shape(self):
        return (self.index.shape[0], int(self.data.shape[1]))

    @property
    def dtype(self):
        return _float_dtype(self.data.dtype)

    @property
    def ndim(self):
        return 2

    def __len__(self):
        return self.index.shape[0]

    def __getitem__(self, rows):
        return LazyRows(self.data, self.index[rows], self.name)

    def read(self):
        return read_rows([(self, None)])[0]


def _as_float(block, dtype):
    return np.asarray(block).astype(dtype, copy=False)


def read_rows(requests):
    """Read several row sets, each lazy array in one pass over its chunks.

    Parameters
    ----------
    requests : list of (source, rows)
        ``source`` is a :class:`LazyRows` or an in-memory array; ``rows`` are
        positions in it (any order, repeats allowed) or None for all.

    Returns
    -------
    list of ndarray
        One array per request, rows in the requested order, float32 kept,
        other dtypes as float64. In-memory sources are returned as they are
        (``rows=None``) or indexed, exactly as numpy indexing would.

    Notes
    -----
    A dask array is read chunk by chunk, a few chunks per ``dask.compute``,
    each chunk's wanted rows copied straight into the outputs: the memory
    needed is the outputs plus a few chunks, never a concatenation of pieces
    next to its result. Every request on the same dask array shares the pass.
    """
    out = [None] * len(requests)
    by_array = {}  # id of a dask array -> (array, dtype, name, [(i, rows)])
    for i, (source, rows) in enumerate(requests):
        if not isinstance(source, LazyRows):
            out[i] = source if rows is None else source[rows]
            continue
        wanted = source.index if rows is None else source.index[rows]
        if is_dask_array(source.data):
            entry = by_array.setdefault(
                id(source.data), (source.data, source.dtype, source.name, [])
            )
            entry[3].append((i, np.asarray(wanted, dtype=int)))
            continue
        unique, inverse = np.unique(wanted, return_inverse=True)
        values = _as_float(source.data[unique], source.dtype)
        values = _checked(values, source.name)
        out[i] = values if rows is None else values[inverse]
    for data, dtype, name, wanted_list in by_array.values():
        arrays = _read_dask(data, dtype, name, [w for _, w in wanted_list])
        for (i, _), values in zip(wanted_list, arrays):
            out[i] = values
    return out


#: Chunks of a dask array computed together by :func:`read_rows`.
CHUNKS_PER_COMPUTE = 8


def _read_dask(data, dtype, name, wanted_list):
    import dask

    d = int(data.shape[1])
    outs = [np.empty((w.shape[0], d), dtype=dtype) for w in wanted_list]
    union = np.unique(np.concatenate(wanted_list)) if wanted_list else []
    bounds = np.cumsum((0,) + tuple(data.chunks[0]))
    # per request: its positions sorted by row, to find each chunk's share
    orders = [np.argsort(w, kind="stable") for w in wanted_list]
    sorted_rows = [w[order] for w, order in zip(wanted_list, orders)]
    chunks = [
        k
        for k in range(len(bounds) - 1)
        if np.searchsorted(union, bounds[k]) < np.searchsorted(union, bounds[k + 1])
    ]
    for first in range(0, len(chunks), CHUNKS_PER_COMPUTE):
        batch = chunks[first : first + CHUNKS_PER_COMPUTE]
        local = []
        for k in batch:
            lo, hi = np.searchsorted(union, bounds[k : k + 2])
            local.append(union[lo:hi])
        pieces = dask.compute(
            *[data.blocks[k][rows - bounds[k]] for k, rows in zip(batch, local)]
        )
        for k, rows, piece in zip(batch, local, pieces):
            piece = _checked(_as_float(piece, dtype), name)
            for out, order, srt in zip(outs, orders, sorted_rows):
                lo, hi = np.searchsorted(srt, bounds[k : k + 2])
                if lo < hi:
                    out[order[lo:hi]] = piece[np.searchsorted(rows, srt[lo:hi])]
    return outs


def _checked(values, name):
    """Reject NaN/inf in rows just read (as ``_validation.check_finite``)."""
    if not np.isfinite(values.sum(dtype=np.float64)) and not np.isfinite(values).all():
        raise ValueError(
            f"{name} contains NaN or inf; embeddings must be finite. Remove "
            "or impute those rows before fitting."
        )
    return values


def iter_row_blocks(source, block_rows):
    """Yield the rows of ``source`` in consecutive blocks of ``block_rows``.

    ``source`` is an in-memory array or a :class:`LazyRows`; both give the same
    blocks (a dask array is read one chunk at a time, so at most a chunk and a
    block are in memory).
    """
    if not isinstance(source, LazyRows):
        for start in range(0, source.shape[0], block_rows):
            yield source[start : start + block_rows]
        return
    data, index = source.data, source.index
    if not is_dask_array(data):
        for start in range(0, index.shape[0], block_rows):
            rows = index[start : start + block_rows]
            yield _checked(_as_float(data[rows], source.dtype), source.name)
        return
    bounds = np.cumsum((0,) + tuple(data.chunks[0]))
    pending = []  # pieces read but not yet yielded, in row order
    for k in range(len(bounds) - 1):
        lo, hi = np.searchsorted(index, bounds[k : k + 2])
        if lo == hi:
            continue
        chunk = _as_float(data.blocks[k].compute(), source.dtype)
        rows = index[lo:hi] - bounds[k]
        if rows.shape[0] != chunk.shape[0]:  # else the whole chunk, no copy
            chunk = chunk[rows]
        pending.append(_checked(chunk, source.name))
        yield from _full_blocks(pending, block_rows)
    if pending:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def _full_blocks(pending, block_rows):
    """Yield ``block_rows``-row blocks from the front of ``pending`` (a list of
    arrays, changed in place), as views when a block lies in one piece."""
    while sum(piece.shape[0] for piece in pending) >= block_rows:
        if pending[0].shape[0] >= block_rows:
            block, rest = pending[0][:block_rows], pending[0][block_rows:]
            pending[0:1] = [rest] if rest.shape[0] else []
            yield block
            continue
        parts, need = [], block_rows
        while need:
            piece = pending.pop(0)
            parts.append(piece[:need])
            if piece.shape[0] > need:
                pending.insert(0, piece[need:])
            need -= parts[-1].shape[0]
        yield np.concatenate(parts)


def default_sample_size(X):
    """How many rows ``max_samples="auto"`` reads: all of an in-memory ``X``;
    :data:`LAZY_SAMPLE_BYTES` worth (at least :data:`MIN_AUTO_SAMPLE`) of a
    lazy one."""
    if not is_lazy(X):
        return None
    row_bytes = X.shape[1] * np.dtype(_float_dtype(X.dtype)).itemsize
    return max(MIN_AUTO_SAMPLE, LAZY_SAMPLE_BYTES // row_bytes)


def sample_rows(n_rows, max_samples, random_state):
    """A sorted uniform draw of ``max_samples`` of ``n_rows`` positions, or None
    (all rows, nothing drawn) when ``max_samples`` is None or not smaller."""
    if max_samples is None or max_samples >= n_rows:
        return None
    return np.sort(random_state.choice(n_rows, size=max_samples, replace=False))


def lazy_map_rows(X, func, n_out, dtype):
    """``func`` applied to each row block of a dask array ``X``, lazily.

    ``func(block) -> (rows,)`` when ``n_out`` is None, else ``(rows, n_out)``.
    """
    X = X.rechunk({1: -1})
    if n_out is None:
        return X.map_blocks(func, dtype=dtype, drop_axis=1)
    return X.map_blocks(func, dtype=dtype, chunks=(X.chunks[0], (n_out,)))
