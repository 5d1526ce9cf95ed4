"""One text-table renderer for every table the package prints.

Used by the metrics report, the inspection results and the ``skhsfm`` command
(terminal and ``results.md``), so that they all align and format numbers the
same way.
"""

import math
from numbers import Integral, Real

__all__ = ["format_table", "format_cell"]


def format_cell(value, float_format="{:.3f}"):
    """Text of one cell: floats through ``float_format`` (NaN as ``"nan"``,
    None as ``"-"``), anything else through ``str``."""
    if value is None:
        return "-"
    if isinstance(value, Real) and not isinstance(value, Integral):
        value = float(value)
        return "nan" if math.isnan(value) else float_format.format(value)
    return str(value)


def format_table(
    header, rows, *, markdown=False, left=1, title=None, float_format="{:.3f}"
):
    """Render rows as an aligned text table.

    Parameters
    ----------
    header : sequence of str
        Column names.
    rows : sequence of sequences
        One sequence of cell values per row (formatted by :func:`format_cell`).
    markdown : bool, default=False
        A Markdown table (``| a | b |`` with an alignment rule), which also reads
        well in a terminal; else plain columns separated by two spaces.
    left : int, default=1
        How many leading columns are left-aligned; the rest are right-aligned.
    title : str or None, default=None
        A line printed above the table (followed by a blank line in Markdown).
    float_format : str, default="{:.3f}"
        Format of float cells.

    Returns
    -------
    str
    """
    cells = [[format_cell(v, float_format) for v in row] for row in rows]
    header = [str(h) for h in header]
    for row in cells:
        if len(row) != len(header):
            raise ValueError(
                f"a table row has {len(row)} cells but the header has "
                f"{len(header)}; pass one value per column."
            )
    widths = [max(len(r[j]) for r in [header] + cells) for j in range(len(header))]

    def line(row):
        parts = [
            cell.ljust(width) if j < left else cell.rjust(width)
            for j, (cell, width) in enumerate(zip(row, widths))
        ]
        if markdown:
            return "| " + " | ".join(parts) + " |"
        return "  ".join(parts).rstrip()

    lines = [] if title is None else [title] + ([""] if markdown else [])
    lines.append(line(header))
    if markdown:
        rule = [
            ":" + "-" * (w + 1) if j < left else "-" * (w + 1) + ":"
            for j, w in enumerate(widths)
        ]
        lines.append("|" + "|".join(rule) + "|")
    lines.extend(line(row) for row in cells)
    return "\n".join(lines)
