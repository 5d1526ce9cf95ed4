"""skhsfm.inspection training curves: one result and one figure for HSFM and AFR."""

import warnings

import numpy as np
import pytest
from sklearn.utils import Bunch

from skhsfm import AFRClassifier, HSFMClassifier
from skhsfm.inspection import TrainingCurves, plot_training_curves, training_curves

TINY_HSFM = dict(n_epochs=3, support_size=4, hard_size=8, inner_steps=3, outer_steps=2)
TINY_AFR = dict(gamma=(1.0, 4.0), reg_lambda=0.0, n_epochs=6, device="cpu")


@pytest.fixture(scope="module")
def hsfm(grouped_data):
    X, y, g = grouped_data[:3]
    return HSFMClassifier(random_state=0, **TINY_HSFM).fit(X, y, g)


@pytest.fixture(scope="module")
def afr(grouped_data):
    X, y, g = grouped_data[:3]
    return AFRClassifier(random_state=0, **TINY_AFR).fit(X, y, g)


def _no_future_warnings(function, *args, **kwargs):
    """Run ``function``, failing on any FutureWarning (such as the one HSFM's
    deprecated history_['outer_loss'] gives)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        return function(*args, **kwargs)


@pytest.mark.parametrize(
    "name, n_epochs, selection_data, has_seconds",
    [("hsfm", 3, "hard pool", True), ("afr", 6, "selection split", False)],
)
def test_training_curves_of_a_fitted_head(
    request, name, n_epochs, selection_data, has_seconds, tmp_path
):
    from matplotlib.figure import Figure

    estimator = request.getfixturevalue(name)
    curves = _no_future_warnings(training_curves, estimator)
    assert isinstance(curves, TrainingCurves)
    assert curves.estimator_name == type(estimator).__name__
    assert curves.best_epoch == estimator.best_epoch_
    np.testing.assert_array_equal(curves.epoch, np.arange(1, n_epochs + 1))
    for key in ("loss", "worst_group_accuracy", "mean_accuracy"):
        np.testing.assert_array_equal(getattr(curves, key), estimator.history_[key])
    assert (curves.seconds is not None) == has_seconds
    assert curves.selection_data == selection_data
    table = repr(curves)
    assert table.startswith(f"TrainingCurves of {type(estimator).__name__}")
    assert "selected" in table and selection_data in table

    # the estimator itself is also accepted, and draws the same figure
    for fig in (
        _no_future_warnings(plot_training_curves, estimator, path=tmp_path / "c.png"),
        curves.plot(),
    ):
        assert isinstance(fig, Figure) and len(fig.axes) == 2
        ax_loss, ax_acc = fig.axes
        np.testing.assert_allclose(ax_loss.get_lines()[0].get_ydata(), curves.loss)
        np.testing.assert_allclose(
            ax_acc.get_lines()[0].get_ydata(), curves.worst_group_accuracy
        )
        assert selection_data in ax_acc.get_ylabel()
        # the selected epoch is marked on both panels
        for ax in fig.axes:
            assert any(
                list(line.get_xdata()) == [estimator.best_epoch_] * 2
                for line in ax.get_lines()
            )
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _history(**changes):
    history = {
        "epoch": np.array([1, 2, 3]),
        "loss": np.array([0.9, 0.5, 0.4]),
        "worst_group_accuracy": np.array([0.5, 0.7, 0.6]),
        "mean_accuracy": np.array([0.8, 0.9, 0.9]),
    }
    history.update(changes)
    return {key: value for key, value in history.items() if value is not None}


def test_training_curves_of_a_look_alike_and_errors():
    curves = training_curves(Bunch(history_=_history(), best_epoch_=2))
    assert curves.estimator_name == "Bunch" and curves.seconds is None
    assert curves.loss_name == "loss" and curves.selection_data == "held-out data"
    # first, selected and last epochs, in order
    assert [line.split()[:2] for line in repr(curves).splitlines()[3:]] == [
        ["1", "first"],
        ["2", "selected"],
        ["3", "last"],
    ]

    with pytest.raises(ValueError, match="training_curves needs a fitted"):
        training_curves(AFRClassifier())
    with pytest.raises(ValueError, match="plot_training_curves needs a fitted"):
        plot_training_curves(HSFMClassifier())
    old_keys = _history(loss=None, outer_loss=np.ones(3))
    with pytest.raises(ValueError, match="history_ has no 'loss'"):
        training_curves(Bunch(history_=old_keys, best_epoch_=1))
    with pytest.raises(ValueError, match=r"history_\['mean_accuracy'\] has shape"):
        training_curves(
            Bunch(history_=_history(mean_accuracy=np.ones(2)), best_epoch_=1)
        )
    with pytest.raises(ValueError, match="best_epoch_=7 is not among"):
        training_curves(Bunch(history_=_history(), best_epoch_=7))
