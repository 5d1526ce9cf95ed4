"""Loaders for the standard on-disk layouts of group-robustness benchmarks.

Each loader reads metadata only (no image decoding) and returns a Bunch of
absolute image paths (or arrays) with ``target``, ``attribute``, ``group`` and
``split``, ready for an embedder. Nothing is downloaded: point ``root`` at a copy
you already have. Errors name the file and what was expected.
"""

import hashlib
import os
import re

import numpy as np
from sklearn.utils import Bunch

from skhsfm.datasets._metadata import (
    MAX_LISTED,
    SPLITS,
    check_files_exist,
    check_split,
    check_splits_present,
    check_unique,
    parse_column,
    read_csv,
)

__all__ = [
    "load_waterbirds",
    "load_celeba",
    "load_metashift",
    "load_dominoes_arrays",
]

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------- helpers
def _check_root(root, what):
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(
            f"{what} folder not found: {root!r} does not exist or is not a "
            "directory. Pass the folder that holds the dataset (nothing is "
            "downloaded)."
        )
    return root


def _finish(
    filenames,
    target,
    attribute,
    split_ids,
    splits,
    target_names,
    attribute_names,
    descr,
    extra=None,
    *,
    requested=False,
    where="the dataset",
):
    """Select splits and assemble the Bunch every loader returns.

    A split the user asked for (``requested``) must have samples; ``where``
    names the metadata for that message.
    """
    check_splits_present(split_ids, splits, requested, where)
    keep = np.isin(split_ids, [SPLITS.index(s) for s in splits])
    n_attr = len(attribute_names)
    bunch = Bunch(
        filenames=np.asarray(filenames, dtype=object)[keep],
        target=target[keep],
        attribute=attribute[keep],
        group=(target * n_attr + attribute)[keep],
        split=np.asarray(SPLITS, dtype=object)[split_ids[keep]],
        target_names=list(target_names),
        attribute_names=list(attribute_names),
        group_names=[f"{t}|{a}" for t in target_names for a in attribute_names],
        DESCR=descr,
    )
    for key, value in (extra or {}).items():
        bunch[key] = value[keep] if isinstance(value, np.ndarray) else value
    return bunch


def _same_file(root):
    """A key under which two spellings of one relative path are equal."""

    def key(name):
        return os.path.normcase(os.path.normpath(os.path.join(root, name)))

    return key


# ------------------------------------------------------------------------ Waterbirds
_WATERBIRDS_COLUMNS = (
    "img_id",
    "img_filename",
    "y",
    "split",
    "place",
    "place_filename",
)


def load_waterbirds(root, *, split=None, check_files=True):
    """Load the Waterbirds metadata from its standard folder.

    Expects ``root/metadata.csv`` with columns ``img_id, img_filename, y,
    split, place, place_filename`` (``split`` 0/1/2 = train/val/test, ``y``
    1 = waterbird, ``place`` 1 = water background) and images at
    ``root/<img_filename>``, as produced by the group DRO release.

    Parameters
    ----------
    root : str or path-like
        The Waterbirds folder (e.g. ``waterbird_complete95_forest2water2``).
    split : {"train", "val", "test"}, list of them, or None, default=None
        Which split(s) to return; None returns all.
    check_files : bool, default=True
        Check that every listed image exists.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames : ndarray of str, absolute image paths.
        target : ndarray of int64, 0 landbird, 1 waterbird.
        attribute : ndarray of int64, 0 land, 1 water background.
        group : ndarray of int64, ``2 * target + attribute``.
        split : ndarray of str, "train", "val" or "test".
        img_id : ndarray of int64.
        target_names, attribute_names, group_names, DESCR.
    """
    root = _check_root(root, "Waterbirds")
    splits = check_split(split)
    path = os.path.join(root, "metadata.csv")
    rows = read_csv(path, _WATERBIRDS_COLUMNS, "Waterbirds metadata")
    check_unique(rows, "img_filename", key=_same_file(root))
    check_unique(rows, "img_id")
    target = parse_column(rows, "y", {0, 1})
    attribute = parse_column(rows, "place", {0, 1})
    split_ids = parse_column(rows, "split", {0, 1, 2})
    img_id = np.array([r["img_id"].strip() for r in rows], dtype=object)
    filenames = []
    for i, row in enumerate(rows):
        name = row["img_filename"].strip()
        if not name:
            raise ValueError(
                f"{path}, line {i + 2}: column 'img_filename' is empty; expected "
                "a path relative to the dataset folder."
            )
        filenames.append(os.path.join(root, name))
    bunch = _finish(
        filenames,
        target,
        attribute,
        split_ids,
        splits,
        ["landbird", "waterbird"],
        ["land", "water"],
        "Waterbirds (Sagawa et al., 2020): CUB birds pasted on Places "
        "backgrounds; target bird type, attribute background.",
        extra={"img_id": img_id},
        requested=split is not None,
        where=f"{path} (column 'split', 0/1/2 = train/val/test)",
    )
    if check_files:
        check_files_exist(bunch.filenames, f"Waterbirds ({root})")
    return bunch


# ---------------------------------------------------------------------------- CelebA
def _celeba_image_dir(root):
    """``img_align_celeba`` (or Kaggle's nested copy of it), else ``root``."""
    folder = os.path.join(root, "img_align_celeba")
    nested = os.path.join(folder, "img_align_celeba")
    if os.path.isdir(nested):
        return nested
    if os.path.isdir(folder):
        return folder
    return root


def _find_file(root, names):
    for name in names:
        if os.path.isfile(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def load_celeba(
    root, *, split=None, target="Blond_Hair", attribute="Male", check_files=True
):
    """Load CelebA (target hair colour, attribute sex by default).

    Two layouts are recognised, in this order:

    1. ``list_attr_celeba.csv`` (``image_id`` plus the 40 attributes as -1/1)
       and ``list_eval_partition.csv`` (``image_id, partition`` with 0/1/2 =
       train/val/test), as in the Kaggle copy;
    2. ``celeba_split.csv`` (or ``celebA_split.csv``) with ``image_id``,
       the target and attribute columns as 0/1, and ``split`` 0/1/2.

    Images are looked up in ``root/img_align_celeba/`` (or the nested
    ``img_align_celeba/img_align_celeba/`` of the Kaggle copy).

    Parameters
    ----------
    root : str or path-like
        The CelebA folder.
    split : {"train", "val", "test"}, list of them, or None, default=None
        Which split(s) to return; None returns all.
    target : str, default="Blond_Hair"
        Attribute column used as the class label.
    attribute : str, default="Male"
        Attribute column used as the spurious attribute.
    check_files : bool, default=True
        Check that every listed image exists.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames, target, attribute, group (``2 * target + attribute``),
        split, image_id, target_names, attribute_names, group_names, layout
        (``"attr+partition"`` or ``"split_csv"``), DESCR.
    """
    root = _check_root(root, "CelebA")
    splits = check_split(split)
    attr_path = _find_file(root, ["list_attr_celeba.csv"])
    split_path = _find_file(root, ["celeba_split.csv", "celebA_split.csv"])
    if attr_path is not None:
        layout = "attr+partition"
        part_path = os.path.join(root, "list_eval_partition.csv")
        attr_rows = read_csv(attr_path, ("image_id", target, attribute), "CelebA")
        part_rows = read_csv(part_path, ("image_id", "partition"), "CelebA")
        check_unique(attr_rows, "image_id")
        check_unique(part_rows, "image_id")
        split_source = f"{part_path} (column 'partition')"
        partition = dict(
            zip(
                (r["image_id"].strip() for r in part_rows),
                parse_column(part_rows, "partition", {0, 1, 2}),
            )
        )
        pm1 = {-1: 0, 1: 1}
        y = parse_column(attr_rows, target, {-1, 1}, mapping=pm1)
        a = parse_column(attr_rows, attribute, {-1, 1}, mapping=pm1)
        image_id = [r["image_id"].strip() for r in attr_rows]
        unknown = [i for i in image_id if i not in partition]
        if unknown:
            raise ValueError(
                f"{part_path}: {len(unknown)} image_id(s) of {attr_path} have no "
                f"partition, e.g. {unknown[:MAX_LISTED]}; expected one row per "
                "image."
            )
        split_ids = np.array([partition[i] for i in image_id], dtype=np.int64)
    elif split_path is not None:
        layout = "split_csv"
        rows = read_csv(split_path, ("image_id", target, attribute, "split"), "CelebA")
        check_unique(rows, "image_id")
        split_source = f"{split_path} (column 'split')"
        y = parse_column(rows, target, {0, 1})
        a = parse_column(rows, attribute, {0, 1})
        split_ids = parse_column(rows, "split", {0, 1, 2})
        image_id = [r["image_id"].strip() for r in rows]
    else:
        raise FileNotFoundError(
            f"CelebA: no metadata in {root!r}; expected either "
            "'list_attr_celeba.csv' with 'list_eval_partition.csv', or "
            "'celeba_split.csv' (columns image_id, "
            f"{target}, {attribute}, split)."
        )
    image_dir = _celeba_image_dir(root)
    bunch = _finish(
        [os.path.join(image_dir, i) for i in image_id],
        y,
        a,
        split_ids,
        splits,
        [f"not {target}", target],
        [f"not {attribute}", attribute],
        f"CelebA (Liu et al., 2015): target {target}, attribute {attribute}.",
        extra={"image_id": np.asarray(image_id, dtype=object), "layout": layout},
        requested=split is not None,
        where=split_source,
    )
    if check_files:
        check_files_exist(bunch.filenames, f"CelebA ({image_dir})")
    return bunch


# -------------------------------------------------------------------------- MetaShift
_CONTEXT_FOLDER = re.compile(r"^(?P<cls>[^()]+)\((?P<context>[^()]+)\)$")


def _list_images(folder):
    return sorted(
        os.path.join(folder, f)
        for f in os.listdir(folder)
        if f.lower().endswith(_IMAGE_EXTENSIONS)
        and os.path.isfile(os.path.join(folder, f))
    )


def _subfolders(folder):
    """Names of the folders inside ``folder``, sorted."""
    return sorted(
        f for f in os.listdir(folder) if os.path.isdir(os.path.join(folder, f))
    )


def load_metashift(root, *, split=None, context_map=None):
    """Load the MetaShift cat/dog benchmark from its folder layout.

    Expects ``root/<split>/<class>/<class>(<context>)/<image>``, e.g.
    ``train/cat/cat(sofa)``, ``train/cat/cat(bed)``, ``train/dog/dog(bench)``,
    ``train/dog/dog(bike)``, ``test/cat/cat(shelf)``, ``test/dog/dog(shelf)``.
    ``train`` and ``test`` are required; ``val`` is read when present. The
    attribute is the context folder.

    Parameters
    ----------
    root : str or path-like
        The MetaShift folder holding ``train/`` and ``test/``.
    split : {"train", "val", "test"}, list of them, or None, default=None
        Which split(s) to return; None returns all that exist.
    context_map : dict or None, default=None
        Optional map from context name to attribute name, e.g.
        ``{"sofa": "indoor", "bed": "indoor", "shelf": "indoor",
        "bench": "outdoor", "bike": "outdoor"}``; every context found must be
        a key. None uses the contexts themselves.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        filenames, target, attribute, group (``target * n_attributes +
        attribute``), split, context (the folder context), target_names
        (sorted class folders), attribute_names (sorted), group_names, DESCR.
    """
    root = _check_root(root, "MetaShift")
    splits = check_split(split)
    present = [s for s in SPLITS if os.path.isdir(os.path.join(root, s))]
    for required in ("train", "test"):
        if required not in present:
            raise FileNotFoundError(
                f"MetaShift: expected the folder {os.path.join(root, required)!r} "
                "(layout <split>/<class>/<class>(<context>)/<image>)."
            )
    records = []  # (split_id, class name, context, filename)
    for s in present:
        split_dir = os.path.join(root, s)
        classes = _subfolders(split_dir)
        if not classes:
            raise ValueError(
                f"MetaShift: {split_dir!r} has no class folders; expected e.g. "
                "'cat/' and 'dog/'."
            )
        for cls in classes:
            class_dir = os.path.join(split_dir, cls)
            contexts = _subfolders(class_dir)
            if not contexts:
                raise ValueError(
                    f"MetaShift: {class_dir!r} has no context folders; expected "
                    f"folders named '{cls}(<context>)'."
                )
            for folder in contexts:
                match = _CONTEXT_FOLDER.match(folder)
                if match is None or match["cls"] != cls:
                    raise ValueError(
                        f"MetaShift: unexpected folder "
                        f"{os.path.join(class_dir, folder)!r}; expected folders "
                        f"named '{cls}(<context>)', e.g. '{cls}(sofa)'."
                    )
                for f in _list_images(os.path.join(class_dir, folder)):
                    records.append((SPLITS.index(s), cls, match["context"], f))
    if not records:
        raise ValueError(f"MetaShift: no image files found under {root!r}.")
    _check_metashift_copies(records)
    contexts = np.array([r[2] for r in records], dtype=object)
    if context_map is not None:
        unmapped = sorted(set(contexts) - set(context_map))
        if unmapped:
            raise ValueError(
                f"context_map has no entry for context(s) {unmapped}; expected a "
                f"key for every context found under {root!r}."
            )
        attr_values = np.array([context_map[c] for c in contexts], dtype=object)
    else:
        attr_values = contexts
    target_names = sorted({r[1] for r in records})
    attribute_names = sorted(set(attr_values))
    target = np.array([target_names.index(r[1]) for r in records], dtype=np.int64)
    attribute = np.array(
        [attribute_names.index(v) for v in attr_values], dtype=np.int64
    )
    split_ids = np.array([r[0] for r in records], dtype=np.int64)
    return _finish(
        [r[3] for r in records],
        target,
        attribute,
        split_ids,
        splits,
        target_names,
        attribute_names,
        "MetaShift cat/dog (Liang & Zou, 2022): target animal, attribute the "
        "context folder.",
        extra={"context": contexts},
        requested=split is not None,
        where=f"MetaShift at {root!r}",
    )


def _file_digest(path):
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _check_metashift_copies(records):
    """The same image (same file name and bytes) in two splits or two classes.

    MetaShift names images by their Visual Genome id, so a copy in the
    training and the test folders leaks test images into training, and a copy
    under cat/ and dog/ gives one image two labels. Only files sharing a name
    and a size are read. (One image under two contexts of one class and split
    is MetaShift's own overlap, and allowed.)
    """
    by_name = {}
    for split_id, cls, _, path in records:
        by_name.setdefault(os.path.basename(path), []).append((split_id, cls, path))
    for entries in by_name.values():
        if len(entries) < 2 or len({(e[0], e[1]) for e in entries}) < 2:
            continue
        sizes = {}
        for entry in entries:
            size = os.path.getsize(entry[2])
            if size:  # an empty file is no image (decoding will say so)
                sizes.setdefault(size, []).append(entry)
        for same_size in sizes.values():
            seen = {}
            for split_id, cls, path in same_size:
                first = seen.setdefault(_file_digest(path), (split_id, cls, path))
                if first[:2] != (split_id, cls):
                    what = (
                        "two splits (test images leak into training)"
                        if first[0] != split_id
                        else "two classes (one image, two labels)"
                    )
                    raise ValueError(
                        f"MetaShift: the same image is in {what}: {first[2]!r} "
                        f"and {path!r}; keep one copy."
                    )


# --------------------------------------------------------------------------- arrays
def _load_npy(path, mmap_mode=None):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Dominoes arrays: expected the file {path!r}, which does not exist "
            "(files X_{split}.npy, y_{split}.npy, env_{split}.npy for split in "
            "train, val, test)."
        )
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:  # not .npy, truncated, object
        raise ValueError(
            f"{path}: could not read a numpy array ({type(exc).__name__}: {exc}); "
            "expected a complete .npy file saved with np.save (numbers, no "
            "Python objects)."
        ) from exc


def _int_labels(values, path, name):
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{path}: {name} must be 1-d; got shape {values.shape}.")
    if values.dtype.kind not in "iubf":
        raise ValueError(
            f"{path}: {name} must hold non-negative integer labels; got values of "
            f"dtype {values.dtype} (e.g. {values[:3].tolist()}). Save the labels "
            "as integers (0, 1, ...)."
        )
    if values.dtype.kind == "f" and np.all(np.isfinite(values)):
        if np.all(values == np.round(values)):
            values = values.astype(np.int64)
    if values.dtype.kind not in "iub" or (values.size and values.min() < 0):
        raise ValueError(
            f"{path}: {name} must hold non-negative integer labels; got dtype "
            f"{values.dtype}" + (f", min {values.min()}" if values.size else "") + "."
        )
    return values.astype(np.int64)


def load_dominoes_arrays(root, *, split=None, mmap_mode=None):
    """Load a dominoes-style dataset saved as numpy arrays.

    Expects ``X_{split}.npy`` (images or features, first axis = samples),
    ``y_{split}.npy`` (class labels) and ``env_{split}.npy`` (spurious
    attribute) for each requested split in ``train``, ``val``, ``test``.

    Parameters
    ----------
    root : str or path-like
        Folder with the ``.npy`` files.
    split : {"train", "val", "test"}, list of them, or None, default=None
        Which split(s) to load; None loads all three. Several splits are
        concatenated (``split`` tells them apart).
    mmap_mode : {None, "r"}, default=None
        Passed to :func:`numpy.load` for the ``X`` files.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        data (the X arrays), target, attribute, group (``target *
        n_attributes + attribute``, with ``n_attributes`` counted over every
        ``env_*.npy`` present so groups agree across splits), split,
        target_names, attribute_names, group_names, DESCR.
    """
    root = _check_root(root, "Dominoes arrays")
    splits = check_split(split)
    xs, ys, envs, split_ids = [], [], [], []
    for s in splits:
        x_path, y_path, e_path = (
            os.path.join(root, f"{p}_{s}.npy") for p in ("X", "y", "env")
        )
        x = _load_npy(x_path, mmap_mode)
        y = _int_labels(_load_npy(y_path), y_path, "y")
        env = _int_labels(_load_npy(e_path), e_path, "env")
        if y.shape[0] == 0:
            raise ValueError(
                f"Dominoes arrays ({root}): the {s} split is empty (y_{s}.npy has "
                "no labels); every split needs samples."
            )
        if not (x.ndim >= 1 and x.shape[0] == y.shape[0] == env.shape[0]):
            raise ValueError(
                f"Dominoes arrays ({root}): X_{s}.npy has shape {x.shape}, "
                f"y_{s}.npy {y.shape}, env_{s}.npy {env.shape}; expected the "
                "same number of samples (first axis) in all three."
            )
        if xs and x.shape[1:] != xs[0].shape[1:]:
            raise ValueError(
                f"Dominoes arrays ({root}): X_{s}.npy has samples of shape "
                f"{x.shape[1:]} but X_{splits[0]}.npy has {xs[0].shape[1:]}; "
                "expected the same shape in every split."
            )
        xs.append(x)
        ys.append(y)
        envs.append(env)
        split_ids.append(np.full(y.shape[0], SPLITS.index(s), dtype=np.int64))
    env_max, y_max = 1, 1
    for s in SPLITS:
        for prefix in ("env", "y"):
            path = os.path.join(root, f"{prefix}_{s}.npy")
            if os.path.isfile(path):
                values = _int_labels(_load_npy(path), path, prefix)
                if values.size:
                    if prefix == "env":
                        env_max = max(env_max, int(values.max()))
                    else:
                        y_max = max(y_max, int(values.max()))
    target = np.concatenate(ys)
    attribute = np.concatenate(envs)
    n_attr = env_max + 1
    data = xs[0] if len(xs) == 1 else np.concatenate(xs)
    target_names = [f"y={c}" for c in range(y_max + 1)]
    attribute_names = [f"env={a}" for a in range(n_attr)]
    return Bunch(
        data=data,
        target=target,
        attribute=attribute,
        group=target * n_attr + attribute,
        split=np.asarray(SPLITS, dtype=object)[np.concatenate(split_ids)],
        target_names=target_names,
        attribute_names=attribute_names,
        group_names=[f"{t}|{a}" for t in target_names for a in attribute_names],
        DESCR="Dominoes-style arrays: X, y (target) and env (spurious attribute) "
        "per split.",
    )
