"""Running on existing engines: sharded embedding on Dask and Ray.

- :func:`embed_dask`: images to a lazy ``dask.array.Array`` of embeddings,
  one task per chunk of images, rows in input order.
- :func:`embed_ray`: images (or a Ray ``Dataset``) to a Ray ``Dataset`` with an
  embedding column, one embedder per actor, rows in input order.
- :func:`with_config`: run a hand-submitted task (``client.submit``, a Ray
  task) under the scikit-learn configuration of the submitting process, so
  that metadata routing (``groups``) is on where the task runs.

The embedder travels to each worker once, not with every task: Dask ships it
as one graph key that every task depends on, Ray puts it in the object store
and each actor reads it once. A worker also shares one loaded backbone between
all copies of equal embedders (see :class:`~skhsfm.embedding.BackboneEmbedder`),
so the model is loaded once per worker process. With ``memory=`` set on the
embedder, every worker reads and writes the same per-image cache entries
(a folder all workers can reach).

Model selection needs nothing from this module: ``GridSearchCV`` and
``cross_validate`` with :func:`~skhsfm.metrics.worst_group_scorer` run under
``joblib.parallel_backend("dask")`` or Ray's joblib backend as they do locally.

dask and ray are imported inside the functions; install them with
``pip install 'skhsfm[distributed]'``.
"""

import contextlib
import os
import uuid

import numpy as np

from skhsfm._utils.text import plain

__all__ = ["embed_dask", "embed_ray", "with_config"]

_INSTALL = (
    "{what} needs {package}; install it with `pip install 'skhsfm[distributed]'` "
    "(or `pip install '{pip}'`)."
)


def _import(what, package, pip, *modules):
    """Import ``modules`` (the first is returned), or say how to install them."""
    import importlib

    try:
        loaded = [importlib.import_module(name) for name in modules]
    except ImportError as exc:
        raise ImportError(_INSTALL.format(what=what, package=package, pip=pip)) from exc
    return loaded[0]


def _import_dask():
    _import("embed_dask", "dask", "dask[array]", "dask", "dask.array")
    import dask
    import dask.array as da

    return dask, da


def _import_ray():
    return _import("embed_ray", "ray", "ray[data]", "ray", "ray.data")


def _check_embedder(embedder):
    from skhsfm.embedding import BackboneEmbedder

    if not isinstance(embedder, BackboneEmbedder):
        raise TypeError(
            "embedder must be a skhsfm.embedding.BackboneEmbedder; got "
            f"{type(embedder).__name__}."
        )
    embedder._validate_params()
    # A copy without its loaded model: what travels to the workers.
    return embedder.__class__(**embedder.get_params(deep=False))


def _check_chunk_size(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {plain(value)}.")
    return int(value)


def _is_path(item):
    return isinstance(item, (str, os.PathLike))


def _as_images(block):
    """A block of a dask array or bag partition as what ``transform`` takes."""
    if isinstance(block, np.ndarray) and block.dtype.kind in "OUS":
        return [os.fspath(p) if _is_path(p) else p for p in block.tolist()]
    if isinstance(block, np.ndarray):
        return block
    return list(block)


def _embed_block(embedder, block):
    """One task: embed a block of images; (n, d) float32 in block order."""
    return np.asarray(embedder.transform(_as_images(block)), dtype=np.float32)


def _embedding_dim(embedder):
    return int(embedder.get_feature_names_out().shape[0])


def _is_dask_collection(obj):
    return hasattr(obj, "__dask_graph__") and callable(obj.__dask_graph__)


def _blocks(images, chunk_size, dask, da):
    """``(delayed blocks, row counts)`` for every accepted kind of ``images``."""
    if _is_dask_collection(images) and hasattr(images, "map_partitions"):
        if hasattr(images, "npartitions") and not hasattr(images, "chunks"):
            # a dask bag: one block per partition, lengths read up front
            lengths = images.map_partitions(lambda part: [len(list(part))]).compute()
            return images.map_partitions(list).to_delayed(), list(lengths)
    if _is_dask_collection(images) and hasattr(images, "chunks"):
        array = images
        if array.ndim == 0:
            raise ValueError("images is a 0-d dask array; pass one image per row.")
        if any(np.isnan(c) for c in array.chunks[0]):
            raise ValueError(
                "images is a dask array with unknown chunk sizes; call "
                "images.compute_chunk_sizes() first."
            )
        if array.ndim > 1:  # an image stack: whole images per block
            array = array.rechunk({axis: -1 for axis in range(1, array.ndim)})
        return list(array.to_delayed().ravel()), list(array.chunks[0])
    if _is_dask_collection(images):
        raise TypeError(
            f"images is a {type(images).__name__}; embed_dask takes a list of "
            "images, an image array, a dask array or a dask bag."
        )
    if isinstance(images, np.ndarray) and images.dtype.kind not in "OUS":
        if images.ndim not in (3, 4):
            raise ValueError(
                f"images is an array of shape {images.shape}; image arrays must be "
                "(N, H, W) or (N, H, W, C)."
            )
        array = da.from_array(images, chunks=(chunk_size,) + images.shape[1:])
        return list(array.to_delayed().ravel()), list(array.chunks[0])
    if isinstance(images, (str, os.PathLike)) or not hasattr(images, "__len__"):
        raise TypeError(
            f"images must be a collection of images; got {type(images).__name__}."
        )
    items = [os.fspath(p) if _is_path(p) else p for p in images]
    if not items:
        raise ValueError("images is empty (0 images); pass at least one image.")
    starts = range(0, len(items), chunk_size)
    blocks = [
        dask.delayed(items[s : s + chunk_size], traverse=False, pure=True)
        for s in starts
    ]
    return blocks, [len(items[s : s + chunk_size]) for s in starts]


def embed_dask(embedder, images, *, chunk_size=256):
    """Embed images with Dask: a lazy array of embeddings in input order.

    Each task embeds one chunk of images with ``embedder.transform``. The
    embedder is one key of the graph that every task depends on, so a worker
    receives it once and keeps one copy, and with it one loaded backbone, for
    all its tasks (not one load per task). Nothing runs until the result is
    computed, except one small task that asks a worker for the embedding
    size (it loads the backbone there, which that worker's tasks then reuse).

    Parameters
    ----------
    embedder : BackboneEmbedder
        The embedder; a copy of its parameters travels to the workers (never
        its loaded model). Set ``memory`` to a folder every worker can reach
        to cache per-image entries shared by all tasks and later runs.
    images : list, ndarray, dask array or dask bag
        Image file paths (or PIL images, arrays) as a list; an image array
        ``(N, H, W[, C])``; a 1-d dask array of paths or an image-stack dask
        array (one task per chunk along the first axis); or a dask bag of paths
        (one task per partition).
    chunk_size : int, default=256
        Images per task for in-memory ``images``; a dask array or bag keeps
        its own chunks or partitions.

    Returns
    -------
    embeddings : dask.array.Array of shape (n_images, n_features), float32
        Row ``i`` is the embedding of image ``i``; equal to
        ``embedder.transform(images)`` (up to floating point, as with any other
        ``batch_size``). With ``embedder.normalize`` the rows are unit-norm.

    See Also
    --------
    embed_ray : The same on Ray, as a Ray Dataset.

    Notes
    -----
    Runs on whatever scheduler is active: a ``dask.distributed`` ``Client``
    when one exists (then the work is spread over its workers), else Dask's
    local threads. Workers must be able to import skhsfm and read the image
    files.

    Examples
    --------
    >>> from dask.distributed import Client               # doctest: +SKIP
    >>> client = Client("tcp://scheduler:8786")           # doctest: +SKIP
    >>> X = embed_dask(BackboneEmbedder(), paths)         # doctest: +SKIP
    >>> X = X.persist()  # embed once, keep on the workers  # doctest: +SKIP
    """
    dask, da = _import_dask()
    embedder = _check_embedder(embedder)
    chunk_size = _check_chunk_size(chunk_size, "chunk_size")
    blocks, lengths = _blocks(images, chunk_size, dask, da)
    if sum(lengths) == 0:
        raise ValueError("images is empty (0 images); pass at least one image.")
    # One key for the embedder, shared by every task (and by the size probe).
    shared = dask.delayed(
        embedder, name=f"skhsfm-embedder-{uuid.uuid4().hex}", traverse=False
    )
    dim = dask.delayed(_embedding_dim)(shared).compute()
    embed = dask.delayed(_embed_block, pure=True)
    parts = [
        da.from_delayed(embed(shared, block), shape=(n, dim), dtype=np.float32)
        for block, n in zip(blocks, lengths)
        if n > 0
    ]
    return da.concatenate(parts, axis=0)


@contextlib.contextmanager
def _dask_client(address=None, n_workers=None):
    """A ``dask.distributed.Client`` for the length of a ``with`` block.

    Of the scheduler at ``address``, or, for None, of a new local cluster of
    ``n_workers`` single-threaded processes (None: Dask's choice); the client,
    and a cluster started here, are closed on exit. The way ``skhsfm embed
    --backend dask`` reaches Dask, as ``--backend ray`` reaches Ray through
    :func:`embed_ray`.

    Raises
    ------
    ImportError
        Saying how to install ``dask.distributed``.
    ConnectionError
        When the scheduler at ``address`` cannot be reached.
    """
    _import("the dask backend", "dask.distributed", "dask[distributed]",
            "dask.distributed")  # fmt: skip
    from dask.distributed import Client, LocalCluster

    cluster = None
    if address is None:
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, dashboard_address=None
        )
    try:
        try:
            client = Client(address if cluster is None else cluster)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"cannot reach the Dask scheduler at {address}: {exc}"
            ) from exc
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _completed_blocks(client, array):
    """Compute the row blocks of the dask ``array`` on ``client``'s cluster;
    yield ``(block index, numpy block)`` as each one finishes."""
    from dask.distributed import as_completed

    futures = client.compute(list(array.to_delayed().ravel()))
    index = {future: i for i, future in enumerate(futures)}
    for future in as_completed(futures):
        yield index[future], future.result()


class _RayEmbedder:
    """The Ray Data actor: one embedder (one loaded backbone) per actor."""

    def __init__(self, embedder, column, output_column):
        import ray

        if isinstance(embedder, ray.ObjectRef):
            embedder = ray.get(embedder)
        self.embedder = embedder
        self.column = column
        self.output_column = output_column

    def __call__(self, batch):
        images = _as_images(batch[self.column])
        out = dict(batch)
        out[self.output_column] = np.asarray(
            self.embedder.transform(images), dtype=np.float32
        )
        return out


def _image_column(dataset, column):
    names = dataset.columns()
    if column is not None:
        if column not in names:
            raise ValueError(
                f"column={column!r} is not a column of the dataset; its columns "
                f"are {names}."
            )
        return column
    for name in ("image", "path"):
        if name in names:
            return name
    if len(names) == 1:
        return names[0]
    raise ValueError(
        f"The dataset has columns {names}; pass column= to name the one holding "
        "the images (paths or arrays)."
    )


def _ordered(ray, dataset):
    """The dataset with block order preserved, without changing the caller's.

    A derived dataset shares its parent's DataContext, so the context is
    copied first (``Dataset.copy(..., _deep_copy=True)``); where Ray does not
    offer that, the dataset's own context is switched to ordered execution.
    """
    try:
        dataset = ray.data.Dataset.copy(dataset, _deep_copy=True)
    except TypeError:  # pragma: no cover - depends on the Ray version
        pass
    dataset.context.execution_options.preserve_order = True
    return dataset


def _ray_dataset(ray, images, batch_size):
    """A Dataset of ``images`` with block order preserved; a given Dataset is
    not changed (see :func:`_ordered`)."""
    if isinstance(images, ray.data.Dataset):
        return _ordered(ray, images)
    if isinstance(images, np.ndarray) and images.dtype.kind not in "OUS":
        if images.ndim not in (3, 4):
            raise ValueError(
                f"images is an array of shape {images.shape}; image arrays must be "
                "(N, H, W) or (N, H, W, C)."
            )
        blocks = [
            images[s : s + batch_size] for s in range(0, images.shape[0], batch_size)
        ]
        dataset = ray.data.from_numpy(blocks).rename_columns({"data": "image"})
        dataset.context.execution_options.preserve_order = True
        return dataset
    if isinstance(images, (str, os.PathLike)) or not hasattr(images, "__len__"):
        raise TypeError(
            f"images must be a collection of images or a ray.data.Dataset; got "
            f"{type(images).__name__}."
        )
    items = [os.fspath(p) if _is_path(p) else p for p in images]
    if not items:
        raise ValueError("images is empty (0 images); pass at least one image.")
    name = "path" if all(isinstance(p, str) for p in items) else "image"
    # one block per batch, so that every actor of the pool gets work
    n_blocks = -(-len(items) // batch_size)
    dataset = ray.data.from_items(
        [{name: item} for item in items], override_num_blocks=n_blocks
    )
    # from_items gave the dataset its own copy of the context
    dataset.context.execution_options.preserve_order = True
    return dataset


def embed_ray(
    embedder,
    images,
    *,
    batch_size=256,
    num_actors=None,
    num_gpus=None,
    column=None,
    output_column="embedding",
):
    """Embed images with Ray Data: a Dataset with an embedding column.

    A pool of actors (``compute=ray.data.ActorPoolStrategy``) each holds one
    copy of the embedder, read once from Ray's object store, and so one loaded
    backbone; batches stream through them. Row order is kept (the returned
    dataset executes with ``preserve_order=True``, which Ray Data does not do
    by default). Nothing runs until the dataset is consumed.

    Parameters
    ----------
    embedder : BackboneEmbedder
        The embedder; a copy of its parameters travels to the actors.
    images : list, ndarray or ray.data.Dataset
        Image file paths (or arrays, PIL images) as a list, an image array
        ``(N, H, W[, C])``, or a Dataset with a column of paths or images
        (``ray.data.read_images`` gives one called ``"image"``).
    batch_size : int, default=256
        Images per batch handed to an actor.
    num_actors : int or None, default=None
        Size of the actor pool; None lets Ray scale it from 1 up to what the
        cluster offers.
    num_gpus : float or None, default=None
        GPUs per actor (with ``embedder.device`` left at ``"auto"`` the
        actors then run on them).
    column : str or None, default=None
        The dataset column holding the images; None takes ``"image"``, else
        ``"path"``, else the only column.
    output_column : str, default="embedding"
        Name of the added column of float32 embeddings.

    Returns
    -------
    dataset : ray.data.Dataset
        The input's columns plus ``output_column``, rows in input order (for a
        list: a ``"path"`` or ``"image"`` column). The stacked embeddings equal
        ``embedder.transform(images)`` up to floating point.

    See Also
    --------
    embed_dask : The same on Dask, as a lazy array.

    Examples
    --------
    >>> import ray                                        # doctest: +SKIP
    >>> ray.init(address="auto")                          # doctest: +SKIP
    >>> ds = embed_ray(BackboneEmbedder(), ray.data.read_images("s3://bucket/"))
    ... # doctest: +SKIP
    >>> X = np.concatenate([b["embedding"] for b in ds.iter_batches(
    ...     batch_format="numpy")])                       # doctest: +SKIP
    """
    ray = _import_ray()
    embedder = _check_embedder(embedder)
    batch_size = _check_chunk_size(batch_size, "batch_size")
    if num_actors is not None:
        num_actors = _check_chunk_size(num_actors, "num_actors")
    dataset = _ray_dataset(ray, images, batch_size)
    column = _image_column(dataset, column)
    if not ray.is_initialized():
        ray.init()
    compute = (
        ray.data.ActorPoolStrategy(size=num_actors)
        if num_actors is not None
        else ray.data.ActorPoolStrategy(min_size=1, max_size=None)
    )
    remote_args = {} if num_gpus is None else {"num_gpus": num_gpus}
    return dataset.map_batches(
        _RayEmbedder,
        fn_constructor_args=(ray.put(embedder), column, output_column),
        batch_size=batch_size,
        batch_format="numpy",
        compute=compute,
        **remote_args,
    )


class with_config:
    """Run ``func`` under the scikit-learn configuration active now.

    scikit-learn's configuration (``set_config``, ``config_context``) belongs
    to the thread that set it. joblib backends carry it to their workers, but a
    task submitted by hand (``client.submit(search.fit, ...)``, a Ray task)
    runs with the worker's defaults, where metadata routing is off: a search
    whose scorer requests ``groups`` then fails. Wrapping the function keeps
    the submitting process's configuration, routing included.

    Parameters
    ----------
    func : callable
        What the task runs, e.g. a search's ``fit``.
    **config
        Settings that override the captured ones, e.g.
        ``enable_metadata_routing=True``.

    Examples
    --------
    >>> import sklearn
    >>> from skhsfm.distributed import with_config
    >>> task = with_config(sklearn.get_config, enable_metadata_routing=True)
    >>> task()["enable_metadata_routing"]
    True

    With Dask, ``client.submit(with_config(search.fit), X, y, groups=groups)``.
    """

    def __init__(self, func, **config):
        import sklearn

        self.func = func
        self.config = {**sklearn.get_config(), **config}

    def __call__(self, *args, **kwargs):
        import sklearn

        with sklearn.config_context(**self.config):
            return self.func(*args, **kwargs)
