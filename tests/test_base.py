"""Tests of skhsfm._base: what every head shares (the version stamp, tags,
the held-out bases, renamed history keys). That a failed fit leaves a head as
it was is tested for every head in ``test_faults.py``."""

import pickle
import warnings

import numpy as np
import pytest

from skhsfm import HSFMClassifier, InconsistentVersionWarning
from skhsfm._base import VERSION_KEY, BaseHead, HeldOutHead, RenamedKeys
from skhsfm._version import __version__
from skhsfm.baselines import AFRClassifier, DFRClassifier, ERMHeadClassifier


class _MeanHead(HeldOutHead):
    """A minimal held-out head: class means of the support pool."""

    def __init__(self, validation_fraction=0.25, random_state=None, fail=False):
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.fail = fail

    def _fit(self, X, y, groups, X_val, y_val, groups_val):
        pools, rng = self._pools(X, y, groups, X_val, y_val, groups_val)
        self.pools_ = pools
        self.draw_ = rng.randint(1 << 30)
        means = np.stack([pools.X[pools.y == k].mean(0) for k in range(2)])
        self.coef_ = (means[1] - means[0])[None, :]
        self.intercept_ = np.zeros(1)
        if self.fail:
            raise RuntimeError("fit failed on purpose")


# ---------------------------------------------------------------- fit, pools


def test_a_held_out_head_gets_its_pools_classes_and_seeded_rng(grouped_data):
    X, y, g = grouped_data[:3]
    labels = np.array(["a", "b"])[y]
    head = _MeanHead(random_state=3).fit(X, labels, g)
    assert head.classes_.tolist() == ["a", "b"]
    assert head.n_features_in_ == X.shape[1]
    pools = head.pools_
    assert pools.X.shape[0] + pools.X_hard.shape[0] == X.shape[0]
    assert pools.hard_index is not None and head.predict(X).dtype == labels.dtype
    again = _MeanHead(random_state=3).fit(X, labels, g)
    assert again.draw_ == head.draw_  # one rng, seeded by random_state
    np.testing.assert_array_equal(again.pools_.hard_index, pools.hard_index)
    assert getattr(head, VERSION_KEY) == __version__


def test_a_failed_first_fit_leaves_no_attribute(grouped_data):
    head = _MeanHead(fail=True)
    with pytest.raises(RuntimeError, match="on purpose"):
        head.fit(*grouped_data[:3])
    assert not [k for k in vars(head) if k.endswith("_")]


def test_fit_parameters_are_documented_once():
    doc = BaseHead.fit.__doc__
    assert "{" not in doc and "X_val" in doc and "groups_val" in doc


# --------------------------------------------------------------------- tags


def test_non_deterministic_tag_follows_random_state():
    assert DFRClassifier().__sklearn_tags__().non_deterministic
    assert not DFRClassifier(random_state=0).__sklearn_tags__().non_deterministic
    assert AFRClassifier().__sklearn_tags__().non_deterministic
    # the ERM head draws nothing at its defaults
    assert not ERMHeadClassifier().__sklearn_tags__().non_deterministic


# ------------------------------------------------------------ version stamp


def test_loading_another_version_warns_once_and_names_both(grouped_data):
    head = ERMHeadClassifier().fit(*grouped_data[:2])
    state = head.__getstate__()
    assert state[VERSION_KEY] == __version__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pickle.loads(pickle.dumps(head))  # the same version: silent
    state[VERSION_KEY] = "0.1.0"
    with pytest.warns(InconsistentVersionWarning) as caught:
        ERMHeadClassifier().__setstate__(state)
    warning = caught[0].message
    assert warning.original_version == "0.1.0"
    assert warning.current_version == __version__
    assert "skhsfm version 0.1.0" in str(warning)
    del state[VERSION_KEY]
    with pytest.warns(InconsistentVersionWarning, match="unknown skhsfm version"):
        ERMHeadClassifier().__setstate__(state)


def test_unfitted_heads_carry_no_stamp_and_load_silently():
    state = ERMHeadClassifier().__getstate__()
    assert VERSION_KEY not in state
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ERMHeadClassifier().__setstate__({**state, VERSION_KEY: "0.0.1"})


def test_a_fitted_state_without_stamp_gets_one_when_saved(grouped_data):
    head = ERMHeadClassifier().fit(*grouped_data[:2])
    delattr(head, VERSION_KEY)  # as if fitted around BaseHead.fit
    assert head.__getstate__()[VERSION_KEY] == __version__


# ------------------------------------------------------------- RenamedKeys


def test_renamed_history_keys_answer_with_a_future_warning():
    history = RenamedKeys({"loss": np.arange(3)}, {"outer_loss": ("loss", "0.3")})
    assert isinstance(history, dict) and list(history) == ["loss"]
    match = r"history_\['outer_loss'\] is deprecated in 0.2 .* removed in 0.3"
    with pytest.warns(FutureWarning, match=match):
        np.testing.assert_array_equal(history["outer_loss"], np.arange(3))
    with pytest.raises(KeyError):
        history["other"]
    assert "outer_loss" not in history


def test_hsfm_history_keeps_the_old_loss_key_for_one_release(grouped_data):
    X, y, g = grouped_data[:3]
    clf = HSFMClassifier(
        n_epochs=2, support_size=4, hard_size=8, inner_steps=2, outer_steps=1,
        device="cpu", random_state=0,
    ).fit(X, y, g)  # fmt: skip
    with pytest.warns(FutureWarning, match=r"use history_\['loss'\]"):
        old = clf.history_["outer_loss"]
    np.testing.assert_array_equal(old, clf.history_["loss"])
