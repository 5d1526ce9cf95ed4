"""Training curves: a fitted head's per-epoch history (HSFM and AFR)."""

from dataclasses import dataclass

import numpy as np

from skhsfm._utils.table import format_table
from skhsfm.inspection._plotting import finish, new_figure

__all__ = ["TrainingCurves", "plot_training_curves", "training_curves"]

_KEYS = ("epoch", "loss", "worst_group_accuracy", "mean_accuracy")


@dataclass(eq=False, repr=False)
class TrainingCurves:
    """Per-epoch loss and accuracies of a fitted head; see :func:`training_curves`.

    Prints the first, selected and last epochs as a table; :meth:`plot` draws
    the curves.

    Parameters
    ----------
    epoch : ndarray of shape (n_epochs,)
        Epoch numbers (1-based).
    loss : ndarray of shape (n_epochs,)
        The loss the estimator records per epoch (``loss_name`` says which).
    worst_group_accuracy, mean_accuracy : ndarray of shape (n_epochs,)
        Accuracies on the data the epoch is selected on (worst-class accuracy
        when that data had no groups).
    best_epoch : int
        The selected epoch; 0 when the initial head was kept (no epoch beat
        it on rows kept apart, see ``HSFMClassifier.best_epoch_``).
    seconds : ndarray of shape (n_epochs,) or None, default=None
        Time since the start of the fit at the end of each epoch, when
        recorded (HSFM).
    estimator_name : str, default=""
        Class name of the estimator the history comes from.
    loss_name : str, default="loss"
        What the loss is, for the figure's labels.
    selection_data : str, default="held-out data"
        What the accuracies are measured on, for the figure's labels.
    """

    epoch: np.ndarray
    loss: np.ndarray
    worst_group_accuracy: np.ndarray
    mean_accuracy: np.ndarray
    best_epoch: int
    seconds: np.ndarray | None = None
    estimator_name: str = ""
    loss_name: str = "loss"
    selection_data: str = "held-out data"

    def __repr__(self):
        picks = {}
        for position, note in ((0, "first"), (-1, "last")):
            picks.setdefault(int(self.epoch[position]), note)
        if self.best_epoch in self.epoch:
            picks[self.best_epoch] = "selected"
        header = ["epoch", "", "loss", "worst-group acc", "mean acc"]
        rows = []
        for epoch in sorted(picks):
            i = int(np.flatnonzero(self.epoch == epoch)[0])
            rows.append(
                [
                    epoch,
                    picks[epoch],
                    float(self.loss[i]),
                    float(self.worst_group_accuracy[i]),
                    float(self.mean_accuracy[i]),
                ]
            )
        name = f" of {self.estimator_name}" if self.estimator_name else ""
        title = (
            f"TrainingCurves{name}: {self.epoch.shape[0]} epochs, selected "
            f"{_selected(self.best_epoch)}\nloss: {self.loss_name}; accuracies on the "
            f"{self.selection_data}"
        )
        return format_table(header, rows, left=2, title=title, float_format="{:.4f}")

    def plot(self, **kwargs):
        """The figure of :func:`plot_training_curves` for this result.

        Parameters
        ----------
        **kwargs
            ``path``; see :func:`plot_training_curves`.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return plot_training_curves(self, **kwargs)


def _selected(best):
    """How a figure or table names the selected epoch."""
    return "the initial head (epoch 0)" if best == 0 else f"epoch {best}"


def _labels(estimator):
    """``(loss_name, selection_data)`` of the heads whose history we know."""
    from skhsfm._hsfm import HSFMClassifier
    from skhsfm.baselines import AFRClassifier

    if isinstance(estimator, HSFMClassifier):
        return "hard-set loss after inner adaptation", "hard pool"
    if isinstance(estimator, AFRClassifier):
        return "weighted cross-entropy + penalty", "selection split"
    return "loss", "held-out data"


def _training_curves(estimator, where):
    history = getattr(estimator, "history_", None)
    if history is None or not hasattr(estimator, "best_epoch_"):
        raise ValueError(
            f"{where} needs a fitted HSFMClassifier or AFRClassifier (with history_ "
            f"and best_epoch_); got {type(estimator).__name__}. Call fit first."
        )
    missing = [key for key in _KEYS if key not in history]
    if missing:
        raise ValueError(
            f"{where}: history_ has no {', '.join(map(repr, missing))}; it needs the "
            f"per-epoch arrays {', '.join(map(repr, _KEYS))}."
        )
    epoch = np.asarray(history["epoch"])
    curves = {key: np.asarray(history[key], dtype=np.float64) for key in _KEYS[1:]}
    for key, values in curves.items():
        if values.shape != epoch.shape or epoch.ndim != 1:
            raise ValueError(
                f"{where}: history_[{key!r}] has shape {values.shape} but "
                f"history_['epoch'] has {epoch.shape}; pass one value per epoch."
            )
    best = int(estimator.best_epoch_)
    if best != 0 and best not in epoch:
        raise ValueError(
            f"{where}: best_epoch_={best} is not among the recorded epochs "
            f"({epoch.min()}..{epoch.max()})."
        )
    seconds = history["seconds"] if "seconds" in history else None
    loss_name, selection_data = _labels(estimator)
    return TrainingCurves(
        epoch=epoch,
        best_epoch=best,
        seconds=None if seconds is None else np.asarray(seconds, dtype=np.float64),
        estimator_name=type(estimator).__name__,
        loss_name=loss_name,
        selection_data=selection_data,
        **curves,
    )


def training_curves(estimator):
    """The per-epoch history of a fitted HSFM or AFR head.

    Parameters
    ----------
    estimator : HSFMClassifier or AFRClassifier
        A fitted estimator, or any object with ``best_epoch_`` and a
        ``history_`` dict of per-epoch arrays ``"epoch"``, ``"loss"``,
        ``"worst_group_accuracy"`` and ``"mean_accuracy"`` (and optionally
        ``"seconds"``).

    Returns
    -------
    curves : TrainingCurves
        Prints the first, selected and last epochs; ``curves.plot()`` draws
        them.

    See Also
    --------
    plot_training_curves : The figure of these curves.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skhsfm.inspection import training_curves
    >>> fake = Bunch(
    ...     history_={"epoch": np.array([1, 2]), "loss": np.array([0.9, 0.4]),
    ...               "worst_group_accuracy": np.array([0.5, 0.7]),
    ...               "mean_accuracy": np.array([0.8, 0.9])},
    ...     best_epoch_=2,
    ... )
    >>> curves = training_curves(fake)
    >>> curves.best_epoch, curves.loss
    (2, array([0.9, 0.4]))
    """
    return _training_curves(estimator, "training_curves")


def plot_training_curves(result, *, path=None):
    """Plot a fitted head's per-epoch history.

    Left: the loss (HSFM: hard-set loss of the head adapted on the edited
    support set, averaged over the epoch's meta-updates; AFR: the weighted
    cross-entropy plus penalty). Right: worst-group and mean accuracy on the
    data the epoch is selected on (HSFM: the hard pool; AFR: its selection
    split), worst-class accuracy when that data had no groups. The selected
    epoch is marked.

    Parameters
    ----------
    result : TrainingCurves or fitted estimator
        From :func:`~skhsfm.inspection.training_curves`, or a fitted
        :class:`~skhsfm.HSFMClassifier` / :class:`~skhsfm.AFRClassifier`
        (taken through :func:`training_curves`: the history is all there is
        to compute).
    path : str or path-like, default=None
        Where to save the figure (the format follows the extension).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    curves = result
    if not isinstance(result, TrainingCurves):
        curves = _training_curves(result, "plot_training_curves")
    best = curves.best_epoch
    fig = new_figure("plot_training_curves", figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(curves.epoch, curves.loss, marker="o", ms=3, color="C3")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(curves.loss_name)
    for values, label in (
        (curves.worst_group_accuracy, "worst-group accuracy"),
        (curves.mean_accuracy, "mean accuracy"),
    ):
        ax_acc.plot(curves.epoch, values, marker="o", ms=3, label=label)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel(f"accuracy on the {curves.selection_data}")
    ax_acc.set_title(
        f"{curves.estimator_name or 'head'} on the {curves.selection_data}"
    )
    for ax in (ax_loss, ax_acc):
        ax.axvline(best, color="k", ls="--", lw=1, label=f"selected {_selected(best)}")
        ax.grid(alpha=0.3)
    ax_acc.legend(loc="best", fontsize="small")
    return finish(fig, path)
