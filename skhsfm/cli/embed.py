"""``skhsfm embed``: images to an embeddings file, on one machine, Dask or Ray.

The images are a folder (searched recursively for image files), a glob
pattern, or a text file with one path per line. The output is ``OUT.npy``
(float32, one row per image) and ``OUT.paths.txt`` (the images in row order:
sorted for a folder or glob, the file's order for a list).

The work is cut into shards of ``--shard-size`` images, each written to
``OUT.npy.shards/`` as soon as it is done, as a verified file (atomically,
with its key and checksum, :mod:`skhsfm._utils.verified`), next to a manifest
naming the images and the backbone. A run that stops, by Ctrl-C, an
unreadable image or a lost worker, resumes from its finished shards when it
is started again with the same arguments; ``--restart`` discards them. When
every shard is done they are joined into ``OUT.npy`` (their checksums checked)
and removed.

``--backend dask`` runs one task per shard on a Dask cluster (``--address`` of
its scheduler, or a local cluster of ``--workers`` processes); ``--backend
ray`` streams the shards through Ray Data actors (``--address`` of a Ray
cluster, or a local Ray). Both go through :mod:`skhsfm.distributed`
(``embed_dask``, ``embed_ray``): the embedder travels to each worker once and
every worker loads the backbone once.

The parser (:func:`add_parser`), the checked settings (:class:`EmbedSettings`)
and the run (:func:`run`) are in this module. dask and ray are imported only
by their backends.
"""

import contextlib
import dataclasses
import glob
import os
import shutil
import sys

import numpy as np

from skhsfm._utils.atomic import atomic_write
from skhsfm._utils.verified import (
    FileInvalid,
    key_digest,
    read_json,
    read_verified,
    verified_shapes,
    write_json,
    write_verified,
)
from skhsfm.cli._common import (
    CLIError,
    Reporter,
    add_backbone_options,
    add_run_options,
    check_positive,
)

__all__ = ["BACKENDS", "IMAGE_SUFFIXES", "EmbedSettings", "add_parser", "run"]

BACKENDS = ("local", "dask", "ray")

#: Files a folder or glob is searched for (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: 2: shards are verified .npz files (1: plain .npy files).
_MANIFEST_FORMAT = 2

_EPILOG = """\
examples:
  skhsfm embed ~/data/birds --backbone resnet50 --weights ~/w/resnet50.pth \\
      --out birds.npy
  skhsfm embed 'shots/*.jpg' --backbone ViT-B-32 --pretrained laion2b_s34b_b79k \\
      --backend dask --address tcp://scheduler:8786 --out shots.npy
  skhsfm embed paths.txt --backbone resnet18 --weights none --backend ray \\
      --address auto --out test.npy
"""


# ------------------------------------------------------------------ parser


def add_parser(subparsers):
    """Add the ``embed`` subcommand to ``subparsers``."""
    import argparse

    p = subparsers.add_parser(
        "embed",
        help="embed images with a frozen backbone into a .npy file",
        description="Embed images (a folder, a glob or a text file of paths) with\n"
        "a frozen backbone into OUT.npy, with the paths in row order in\n"
        "OUT.paths.txt; on this machine, a Dask cluster or Ray, resumable by\n"
        "shards.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "images", help="a folder, a glob pattern (quoted) or a text file of paths"
    )
    p.add_argument(
        "--out", required=True, metavar="FILE.npy", help="the embeddings file"
    )
    add_backbone_options(
        p,
        "a torchvision model (resnet50) or an open_clip model (ViT-B-32), "
        "optionally as torchvision:NAME or open_clip:NAME",
        required=True,
    )
    p.add_argument("--normalize", action="store_true", help="unit-norm embeddings")
    p.add_argument(
        "--shard-size",
        type=int,
        default=1024,
        metavar="N",
        help="images per shard: the unit of work and of resuming "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="local",
        help="where the work runs (default: %(default)s)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="an existing cluster: a Dask scheduler (tcp://host:8786) or a Ray "
        "cluster (auto, ray://host:10001); default: start a local one",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="processes of a local cluster, or Ray actors (default: the "
        "engine's choice)",
    )
    p.add_argument("--restart", action="store_true", help="discard finished shards")
    add_run_options(p)
    p.set_defaults(handler=_handle, subparser=p)
    return p


def _handle(parser, args, argv):
    return run(EmbedSettings.from_args(args, parser))


@dataclasses.dataclass(frozen=True)
class EmbedSettings:
    """Everything one ``skhsfm embed`` run needs, checked.

    Attributes
    ----------
    images : str
        The folder, glob or path list as given.
    out : str
        The ``.npy`` file written.
    embedder : dict
        ``BackboneEmbedder`` parameters (backbone, model_name, pretrained,
        batch_size, normalize, device).
    shard_size : int
    backend : {"local", "dask", "ray"}
    address : str or None
    workers : int or None
    restart : bool
    quiet : bool
    traceback : bool
        Let an error inside the work propagate (``--traceback``) instead of
        reporting it as one line with the number of finished shards.
    """

    images: str
    out: str
    embedder: dict
    shard_size: int
    backend: str
    address: object
    workers: object
    restart: bool
    quiet: bool
    traceback: bool = False

    @classmethod
    def from_args(cls, args, parser):
        from skhsfm.cli._sources import resolve_backbone

        check_positive(parser, args, ("batch_size", "shard_size", "workers"))
        if not args.out.endswith(".npy"):
            parser.error(f"--out must name a .npy file; got {args.out!r}.")
        if args.address is not None and args.backend == "local":
            parser.error("--address needs --backend dask or --backend ray.")
        if args.backbone == "dominoes-cnn":
            raise CLIError(
                "--backbone dominoes-cnn is trained by `skhsfm benchmark`; for "
                "images pick a torchvision or open_clip model, e.g. --backbone "
                "resnet50 --weights /path/to/resnet50.pth."
            )
        spec = resolve_backbone(args.backbone, args.pretrained, args.weights, None)
        embedder = {
            "backbone": spec["backbone"],
            "model_name": spec["model_name"],
            "pretrained": spec["pretrained"],
            "batch_size": args.batch_size,
            "normalize": args.normalize,
            "device": args.device,
        }
        return cls(
            images=args.images,
            out=args.out,
            embedder=embedder,
            shard_size=args.shard_size,
            backend=args.backend,
            address=args.address,
            workers=args.workers,
            restart=args.restart,
            quiet=args.quiet,
            traceback=args.traceback,
        )


# ------------------------------------------------------------------ inputs


def _is_image(name):
    return name.lower().endswith(IMAGE_SUFFIXES)


def list_images(spec):
    """The image paths ``spec`` names, in output order (see the module doc)."""
    spec = os.path.expanduser(spec)
    if os.path.isdir(spec):
        found = sorted(
            os.path.join(folder, name)
            for folder, _, names in os.walk(spec)
            for name in names
            if _is_image(name)
        )
        where = f"folder {spec!r}"
    elif os.path.isfile(spec) and not _is_image(spec):
        with open(spec, encoding="utf-8") as handle:
            listed = [line.strip() for line in handle if line.strip()]
        base = os.path.dirname(os.path.abspath(spec))
        found = [os.path.join(base, os.path.expanduser(p)) for p in listed]
        missing = [p for p in found if not os.path.isfile(p)]
        if missing:
            raise CLIError(
                f"{spec} lists {len(missing)} path(s) that are not files, e.g. "
                f"{missing[0]!r}; fix the list (relative paths are read from the "
                "list's folder)."
            )
        where = f"list {spec!r}"
    elif os.path.isfile(spec):
        found = [spec]
        where = spec
    else:
        found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        if not found and not glob.has_magic(spec):
            raise CLIError(
                f"{spec} does not exist; pass a folder, a glob pattern or a text "
                "file with one image path per line."
            )
        where = f"pattern {spec!r}"
    if not found:
        raise CLIError(
            f"no images in {where} (looked for {', '.join(IMAGE_SUFFIXES)})."
        )
    return [os.path.abspath(p) for p in found]


# ------------------------------------------------------------------ shards


class ShardStore:
    """The finished shards of one run, in ``OUT.npy.shards/``."""

    def __init__(self, out, paths, settings):
        self.folder = out + ".shards"
        self.paths = paths
        self.size = settings.shard_size
        self.n_shards = -(-len(paths) // self.size)
        self.manifest = {
            "format": _MANIFEST_FORMAT,
            "images": len(paths),
            "paths_digest": key_digest("\n".join(paths)),
            "shard_size": self.size,
            "embedder": {k: _jsonable(v) for k, v in settings.embedder.items()},
        }

    def open(self, restart):
        """Create the folder, or check that it holds shards of this run."""
        path = os.path.join(self.folder, "manifest.json")
        if restart and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        if os.path.exists(path):
            found = read_json(path)
            if _comparable(found) != _comparable(self.manifest):
                raise CLIError(
                    f"{self.folder} holds shards of another run (other images "
                    "or settings); pass --restart to discard them or choose "
                    "another --out."
                )
            return
        try:
            os.makedirs(self.folder, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"--out: cannot create {self.folder}: {exc}") from exc
        write_json(path, self.manifest)

    def rows(self, k):
        return self.paths[k * self.size : (k + 1) * self.size]

    def _file(self, k):
        return os.path.join(self.folder, f"shard-{k:06d}.npz")

    def _key(self, k):
        """What shard ``k`` is: its images (by the manifest's digest) and place."""
        return f"{self.manifest['paths_digest']}/{self.size}/{k}"

    def done(self, k):
        """Whether shard ``k`` is finished: a verified file of this shard with a
        float32 array of one row per image (its checksum is checked by
        :meth:`join`, which reads the data)."""
        try:
            shape, dtype = verified_shapes(self._file(k), self._key(k))["embeddings"]
        except (FileInvalid, KeyError):
            return False
        return dtype == np.float32 and len(shape) == 2 and shape[0] == len(self.rows(k))

    def write(self, k, embeddings):
        array = np.ascontiguousarray(embeddings, dtype=np.float32)
        if array.shape[0] != len(self.rows(k)):
            raise CLIError(
                f"shard {k} came back with {array.shape[0]} rows for "
                f"{len(self.rows(k))} images."
            )
        write_verified(self._file(k), {"embeddings": array}, self._key(k))

    def read(self, k):
        """Shard ``k``'s embeddings, verified; a bad shard is removed (so that a
        re-run computes it again) and reported."""
        try:
            return read_verified(self._file(k), self._key(k))["embeddings"]
        except FileInvalid as exc:
            try:
                os.remove(self._file(k))
            except OSError:
                pass
            raise CLIError(
                f"shard {k} ({self._file(k)}) cannot be used: {exc}; it was "
                "removed, run the same command again to compute it anew."
            ) from exc

    def join(self, out, paths_file):
        """Write ``out`` and ``paths_file`` from the shards, then remove them."""
        dim = verified_shapes(self._file(0), self._key(0))["embeddings"][0][1]

        def fill(tmp):
            joined = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float32, shape=(len(self.paths), dim)
            )
            for k in range(self.n_shards):
                shard = self.read(k)
                if shard.shape[1] != dim:
                    raise CLIError(
                        f"shard {k} has {shard.shape[1]} columns, shard 0 {dim}; "
                        "pass --restart."
                    )
                joined[k * self.size : k * self.size + shard.shape[0]] = shard
            joined.flush()
            del joined

        text = "".join(p + "\n" for p in self.paths).encode()
        atomic_write(out, fill)
        atomic_write(paths_file, lambda tmp: _write_bytes(tmp, text))
        shutil.rmtree(self.folder, ignore_errors=True)
        return dim


def _jsonable(value):
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _comparable(manifest):
    """The manifest without settings that do not change the embeddings."""
    if not isinstance(manifest, dict):
        return None
    embedder = dict(manifest.get("embedder", {}))
    for name in ("batch_size", "device"):
        embedder.pop(name, None)
    return {**manifest, "embedder": embedder}


def _write_bytes(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


# ------------------------------------------------------------------ backends


def _embed_shard(embedder, paths):
    """One shard on a worker: float32 (n, d)."""
    return np.asarray(embedder.transform(paths), dtype=np.float32)


def _run_local(embedder, store, pending, on_done):
    for k in pending:
        on_done(k, _embed_shard(embedder, store.rows(k)))


def _run_dask(embedder, store, pending, on_done, address, workers):
    from skhsfm.distributed import _completed_blocks, _dask_client, embed_dask

    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(_dask_client(address, workers))
        except ImportError as exc:
            raise CLIError(f"--backend dask: {exc}") from exc
        except ConnectionError as exc:
            raise CLIError(f"--address {address}: {exc}") from exc
        paths = [p for k in pending for p in store.rows(k)]
        # one block per shard, in order (only the last shard is short)
        embeddings = embed_dask(embedder, paths, chunk_size=store.size)
        for i, block in _completed_blocks(client, embeddings):
            on_done(pending[i], block)


def _run_ray(embedder, store, pending, on_done, address, workers):
    try:
        import ray
    except ImportError as exc:
        raise CLIError(
            "--backend ray needs ray[data]; install it with "
            "`pip install 'skhsfm[distributed]'`."
        ) from exc
    from skhsfm.distributed import embed_ray

    started = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, num_cpus=None if address else workers)
        except ConnectionError as exc:
            raise CLIError(f"--address {address}: cannot reach Ray: {exc}") from exc
        started = True
    try:
        paths = [p for k in pending for p in store.rows(k)]
        dataset = embed_ray(
            embedder,
            paths,
            batch_size=min(embedder.batch_size, store.size),
            num_actors=workers,
        )
        # batches of one shard each, in order (only the last shard is short)
        batches = dataset.iter_batches(batch_size=store.size, batch_format="numpy")
        for k, batch in zip(pending, batches):
            if list(batch["path"]) != store.rows(k):
                raise CLIError(f"shard {k} came back out of order; pass --restart.")
            on_done(k, batch["embedding"])
    finally:
        if started:
            ray.shutdown()


# ------------------------------------------------------------------ run


def run(settings):
    """Embed the images of ``settings`` into ``settings.out``; status 0."""
    from skhsfm.embedding import BackboneEmbedder

    reporter = Reporter(quiet=settings.quiet)
    paths = list_images(settings.images)
    store = ShardStore(settings.out, paths, settings)
    store.open(settings.restart)
    pending = [k for k in range(store.n_shards) if not store.done(k)]
    finished = store.n_shards - len(pending)
    reporter.log(
        f"{len(paths)} images in {store.n_shards} shard(s) of {store.size}"
        + (f"; {finished} already done" if finished else "")
        + f"; backend {settings.backend}"
    )
    embedder = BackboneEmbedder(show_progress_bar=False, **settings.embedder)
    done_images = sum(len(store.rows(k)) for k in range(store.n_shards)) - sum(
        len(store.rows(k)) for k in pending
    )
    bar = reporter.bar(len(paths), "Embedding", unit="img", leave=False)
    bar.update(done_images)

    def on_done(k, embeddings):
        store.write(k, embeddings)
        bar.update(len(store.rows(k)))

    try:
        if pending and settings.backend == "local":
            _run_local(embedder, store, pending, on_done)
        elif pending and settings.backend == "dask":
            _run_dask(
                embedder, store, pending, on_done, settings.address, settings.workers
            )
        elif pending:
            _run_ray(
                embedder, store, pending, on_done, settings.address, settings.workers
            )
    except CLIError:
        raise
    except Exception as exc:  # an image, a worker, the cluster: one line
        if settings.traceback:
            raise
        done = sum(store.done(k) for k in range(store.n_shards))
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise CLIError(
            f"{first} ({done} of {store.n_shards} shards are done; run the same "
            "command again to resume)"
        ) from exc
    finally:
        bar.close()
    paths_file = settings.out[: -len(".npy")] + ".paths.txt"
    dim = store.join(settings.out, paths_file)
    reporter.log(f"wrote {settings.out} ({len(paths)} x {dim}) and {paths_file}")
    if not settings.quiet:
        print(f"{settings.out}: {len(paths)} x {dim}", file=sys.stdout)
    return 0
