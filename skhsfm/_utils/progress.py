"""Progress bars that follow the logger level, and the no-op bar.

Long work (embedding, the dominoes CNN trainer, the ``skhsfm`` command) reports
progress through callbacks (``on_epoch=``, ``log=``); whoever drives the work
turns those callbacks into a bar from :func:`progress_bar`. tqdm is imported
only when a bar is shown.
"""

import logging

__all__ = ["NoBar", "progress_bar", "show_progress"]


class NoBar:
    """Stands in for a tqdm bar when bars are off (same methods, draws nothing)."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def write(self, text):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def show_progress(setting, logger="skhsfm"):
    """Resolve a ``show_progress_bar``-style setting: True/False as given;
    None shows bars when ``logger`` is enabled for INFO."""
    if setting is None:
        return logging.getLogger(logger).getEffectiveLevel() <= logging.INFO
    return bool(setting)


def progress_bar(total, desc, *, show=None, unit="it", name="show_progress_bar", **kw):
    """A tqdm bar, or a :class:`NoBar` when bars are off.

    Parameters
    ----------
    total : int or None
    desc : str
    show : bool or None, default=None
        True insists on a bar (an ImportError naming ``name`` without tqdm);
        None shows one when the ``"skhsfm"`` logger is enabled for INFO and
        tqdm is installed; False never.
    unit : str, default="it"
    name : str, default="show_progress_bar"
        The user-facing setting, for the error message.
    **kw
        Passed to tqdm (``file``, ``leave``, ...).
    """
    if not show_progress(show):
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        if show:
            raise ImportError(
                f"{name}=True needs tqdm; install it with `pip install tqdm` or "
                f"pass {name}=False."
            ) from exc
        return NoBar()
    return tqdm(total=total, desc=desc, unit=unit, **kw)
