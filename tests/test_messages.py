"""Messages show plain numbers and names: ``class 0``, never ``np.int64(0)``.

numpy >= 2 writes a scalar's repr as ``np.int64(0)``; a message that formats a
label with ``!r`` or a list of numpy labels shows it that way. Each case below
feeds numpy values (labels, counts, settings) to a check that warns or raises,
and the message must read as the user wrote the value.
"""

import re
import warnings

import numpy as np
import pytest

from skhsfm import HSFMClassifier
from skhsfm._utils.text import plain, python_value
from skhsfm.datasets import make_dominoes
from skhsfm.inspection import mean_difference_direction
from skhsfm.metrics import group_accuracy_report, paired_difference
from skhsfm.model_selection import GroupStratifiedKFold

NUMPY_REPR = re.compile(r"\bnp\.\w+\(|array\(")


def hsfm_small_class():
    # 30 rows of class 0, 4 of class 1: support_size=8 draws class 1 twice over
    rng = np.random.RandomState(0)
    X = rng.normal(size=(34, 3))
    y = np.array([0] * 30 + [1] * 4, dtype=np.int64)
    HSFMClassifier(
        balance="classes", support_size=8, n_epochs=1, device="cpu", random_state=0
    ).fit(X, y)


def reference_weight_nan():
    y = np.array([0, 1, 0, 1])
    group_accuracy_report(
        y, y, groups=y, reference_groups={np.int64(0): np.float64("nan")}
    )


def direction_unknown_source():
    X = np.eye(4)
    mean_difference_direction(
        X, np.array([1, 1, 2, 2]), source=np.int64(7), target=np.int64(1)
    )


def dominoes_classes():
    make_dominoes(40, 20, 20, n_classes=np.int64(3))


def train_cnn_both_names():
    from skhsfm.datasets import train_dominoes_backbone

    data = make_dominoes(40, 20, 20, random_state=0)
    train_dominoes_backbone(data.train, epochs=np.int64(1), n_epochs=2)


def chunk_size():
    from skhsfm.distributed import _check_chunk_size

    _check_chunk_size(np.float64(2.5), "chunk_size")


def dfr_bad_grid():
    from skhsfm.baselines import DFRClassifier

    X = np.random.RandomState(0).normal(size=(8, 2))
    y = np.array([0, 1] * 4)
    DFRClassifier(Cs=[np.float64(1.0), np.float64(-1.0)]).fit(X, y, y)


CASES = {
    "HSFM support_size warning": (hsfm_small_class, UserWarning, "class 1's"),
    "reference_groups weight": (reference_weight_nan, ValueError, "[0] must be"),
    "mean_difference_direction source": (
        direction_unknown_source,
        ValueError,
        "source=7 does",
    ),
    "paired_difference confidence": (
        lambda: paired_difference([1.0, 2.0], [0.0, 1.0], confidence=np.float64(2)),
        ValueError,
        "got 2.0.",
    ),
    "GroupStratifiedKFold n_splits": (
        lambda: GroupStratifiedKFold(np.float64(2.5)),
        ValueError,
        "got 2.5 of type",
    ),
    "GroupStratifiedKFold shuffle": (
        lambda: GroupStratifiedKFold(3, shuffle=np.int64(1)),
        ValueError,
        "got 1.",
    ),
    "GroupStratifiedKFold random_state": (
        lambda: GroupStratifiedKFold(3, random_state=np.int64(4)),
        ValueError,
        "random_state=4 has",
    ),
    "make_dominoes n_classes": (dominoes_classes, ValueError, "got 3."),
    "train_dominoes_backbone renamed": (
        train_cnn_both_names,
        ValueError,
        "(epochs=1, n_epochs=2)",
    ),
    "distributed chunk size": (chunk_size, ValueError, "got 2.5."),
    "DFR Cs grid entry": (dfr_bad_grid, ValueError, "Cs[1] is -1.0 (float64)"),
}


def message_of(trigger, kind):
    """The text of the warning or error ``trigger()`` gives."""
    if issubclass(kind, Warning):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trigger()
        texts = [str(w.message) for w in caught if issubclass(w.category, kind)]
        assert texts, f"no {kind.__name__} was raised"
        return "\n".join(texts)
    with pytest.raises(kind) as info:
        trigger()
    return str(info.value)


@pytest.mark.parametrize("case", sorted(CASES))
def test_messages_show_plain_values(case):
    trigger, kind, expected = CASES[case]
    text = message_of(trigger, kind)
    assert not NUMPY_REPR.search(text), text
    assert expected in text, text


def test_plain():
    assert plain(np.int64(0)) == "0"
    assert plain(np.float32(0.5)) == "0.5"
    assert plain(np.str_("landbird")) == "'landbird'"
    assert plain(np.array([0, 1])) == "[0, 1]"
    assert plain([np.int64(1), (np.bool_(True), "a")]) == "[1, (True, 'a')]"
    assert plain({np.int64(1): np.float64(0.25)}) == "{1: 0.25}"
    # a string label and a number label stay distinguishable
    assert plain("0") != plain(0)


def test_python_value_leaves_other_objects_alone():
    marker = object()
    assert python_value(marker) is marker
    assert python_value({np.int64(2)}) == {2}
