"""Reading the metadata files of on-disk datasets, strictly.

Shared by the loaders (:mod:`skhsfm.datasets._loaders`): CSV tables whose
every problem is an error naming the file and the line (not UTF-8 text, a row
with too few or too many fields, an unknown value, a duplicated image), and
the checks that a selection of splits is not empty. Nothing here decodes
images.
"""

import csv
import os

import numpy as np

__all__ = [
    "MAX_LISTED",
    "SPLITS",
    "Rows",
    "check_files_exist",
    "check_split",
    "check_splits_present",
    "check_unique",
    "parse_column",
    "read_csv",
]

SPLITS = ("train", "val", "test")
MAX_LISTED = 5


class Rows(list):
    """The rows of a CSV file as dicts, with where they came from.

    ``path`` is the file, ``header`` its column names and ``lines[i]`` the
    line number of row ``i`` in the file (1 is the header), for messages.
    """

    def __init__(self, rows, path, header, lines):
        super().__init__(rows)
        self.path = path
        self.header = header
        self.lines = lines


def check_split(split):
    """None -> all splits; a name or a list of names -> a tuple of names."""
    if split is None:
        return SPLITS
    names = (split,) if isinstance(split, str) else tuple(split)
    bad = [s for s in names if s not in SPLITS]
    if bad or not names:
        raise ValueError(
            f"split must be None, one of {list(SPLITS)} or a list of them; got "
            f"{split!r}."
        )
    return names


def _header(reader, path):
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise ValueError(f"{path}, line 1: unreadable CSV header ({exc}).") from exc
    header = [h.strip() for h in (first or [])]
    if header:
        header[0] = header[0].lstrip("\ufeff")
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise ValueError(
            f"{path}, line 1: the header names column(s) {duplicated} more than "
            "once; each column must appear once."
        )
    return header


def _rows(reader, path, header):
    rows, lines = [], []
    while True:
        try:
            fields = next(reader, None)
        except csv.Error as exc:
            raise ValueError(
                f"{path}, line {reader.line_num}: unreadable CSV row ({exc}); "
                "expected comma-separated text."
            ) from exc
        if fields is None:
            return rows, lines
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line
        if len(fields) != len(header):
            raise ValueError(
                f"{path}, line {reader.line_num}: the row has {len(fields)} "
                f"field(s) but the header has {len(header)} ({header}); every row "
                "needs one value per column. Fix or remove the row."
            )
        rows.append(dict(zip(header, fields)))
        lines.append(reader.line_num)


def read_csv(path, required, what):
    """The rows of a CSV file, after checking its text, header and field counts.

    Raises FileNotFoundError when the file is missing, ValueError (naming the
    file and the line) when it is not UTF-8 text, lacks a column of
    ``required``, has a row with the wrong number of fields, or no row.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{what}: expected the file {path!r}, which does not exist."
        )
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = _header(reader, path)
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(
                    f"{path}: expected columns {list(required)}; missing {missing} "
                    f"(the header has {header})."
                )
            rows, lines = _rows(reader, path, header)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start}); "
            "expected a comma-separated text file with a header row. Is it the "
            "right file, complete and not compressed?"
        ) from exc
    if not rows:
        raise ValueError(f"{path}: the file has a header but no rows.")
    return Rows(rows, path, header, lines)


def parse_column(rows, column, allowed, mapping=None):
    """Integer column values, checked against ``allowed`` (file line in errors)."""
    out = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        raw = row[column].strip()
        try:
            value = int(float(raw)) if raw and float(raw).is_integer() else None
        except (ValueError, OverflowError):
            value = None
        if value is None or value not in allowed:
            raise ValueError(
                f"{rows.path}, line {rows.lines[i]}: column {column!r} has value "
                f"{raw!r}; expected one of {sorted(allowed)}."
            )
        out[i] = mapping[value] if mapping else value
    return out


def _differences(first, second, columns):
    changed = [c for c in columns if first[c].strip() != second[c].strip()]
    if not changed:
        return "an identical row"
    listed = ", ".join(
        f"{c} {first[c].strip()!r} vs {second[c].strip()!r}" for c in changed
    )
    return f"a conflicting row ({listed})"


def check_unique(rows, column, what="image", key=None):
    """Each value of ``column`` on one row only.

    A repeated image is an error naming the file, both lines and the image:
    identical rows would be counted twice, conflicting ones give one image two
    labels or put it in two splits (training data leaking into the test set).
    ``key`` maps a value to what identifies it (e.g. a normalized path).
    """
    seen = {}
    for i, row in enumerate(rows):
        value = row[column].strip()
        ident = value if key is None else key(value)
        if ident in seen:
            j = seen[ident]
            raise ValueError(
                f"{rows.path}, line {rows.lines[i]}: {what} {value!r} "
                f"({column}) is listed again, first at line {rows.lines[j]}, as "
                f"{_differences(rows[j], row, rows.header)}; each {what} must "
                "appear on one row. Remove the duplicate."
            )
        seen[ident] = i


def check_splits_present(split_ids, splits, requested, where):
    """Every requested split has samples (``requested``: the user named them).

    ``where`` says where the splits come from, for the message.
    """
    if not requested:
        if not np.isin(split_ids, [SPLITS.index(s) for s in splits]).any():
            raise ValueError(f"{where}: no sample in any split.")
        return
    empty = [s for s in splits if not np.any(split_ids == SPLITS.index(s))]
    if empty:
        present = [s for s in SPLITS if np.any(split_ids == SPLITS.index(s))]
        raise ValueError(
            f"{where}: the requested split(s) {empty} have no samples (the data "
            f"has {present}). Request split(s) among {present}, or split=None "
            "for all."
        )


def check_files_exist(filenames, what):
    missing = [f for f in filenames if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(
            f"{what}: {len(missing)} of {len(filenames)} image files listed in "
            f"the metadata are missing, e.g. {missing[:MAX_LISTED]}. Check "
            "`root`, or pass check_files=False to skip this check."
        )
