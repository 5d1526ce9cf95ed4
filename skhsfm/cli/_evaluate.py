"""One seed of ``skhsfm benchmark``: every head, in every data situation.

Users hold group labels on the training and validation splits, on the
validation split only, on neither, or have no validation split at all. A
situation says which of the benchmark's splits and labels a head's ``fit``
sees; :func:`fit_call` builds that call, and :func:`adapt` puts a head that
cannot run without group labels behind
:class:`~skhsfm.groups.InferredGroupsClassifier` where the situation has none,
so every method gets a number in every situation (or an honest "not run"
note when it cannot run at all). :func:`evaluate_seed` fits and scores them.
"""

import dataclasses
import time

import numpy as np

from skhsfm.cli._common import collect_warnings
from skhsfm.utils import _registry

__all__ = [
    "ERM_BACKBONE",
    "SITUATIONS",
    "Situation",
    "adapt",
    "evaluate_seed",
    "fit_call",
    "labelled",
    "parse",
    "reference_label",
]

#: The registered heads, in table order.
_HEADS = tuple(_registry("head"))
ERM_BACKBONE = "ERM (backbone head)"


@dataclasses.dataclass(frozen=True)
class Situation:
    """Which splits and group labels a head's ``fit`` is given.

    Attributes
    ----------
    key : str
        The ``--situations`` name.
    tag : str
        The suffix of the table labels (``"DFR [val groups]"``).
    description : str
        One line for the help and the report.
    train_groups : bool
        Whether ``fit`` gets the training split's groups.
    validation : bool
        Whether ``fit`` gets the validation split (``X_val``, ``y_val``).
    val_groups : bool
        Whether it gets the validation split's groups too.
    """

    key: str
    tag: str
    description: str
    train_groups: bool
    validation: bool
    val_groups: bool

    @property
    def has_groups(self):
        """Whether any group label reaches the head."""
        return self.train_groups or self.val_groups


#: The situations, in table order.
SITUATIONS = {
    s.key: s
    for s in (
        Situation("both", "train+val groups", "groups on train and val",
                  train_groups=True, validation=True, val_groups=True),
        Situation("val", "val groups", "groups on the val split only",
                  train_groups=False, validation=True, val_groups=True),
        Situation("none", "no groups", "no group labels (val split kept)",
                  train_groups=False, validation=True, val_groups=False),
        Situation("train", "no val split", "training split and its groups only",
                  train_groups=True, validation=False, val_groups=False),
    )
}  # fmt: skip


def parse(values):
    """``--situations`` values (``all`` for every one) as Situations, in
    table order; ValueError names a repeated value."""
    if "all" in values:
        return tuple(SITUATIONS.values())
    if len(set(values)) != len(values):
        raise ValueError(f"--situations lists a situation twice: {' '.join(values)}.")
    return tuple(s for key, s in SITUATIONS.items() if key in values)


def labelled(label, situation, situations):
    """A table label: suffixed with the situation when there are several."""
    if len(situations) == 1:
        return label
    return f"{label} [{situation.tag}]"


def fit_call(situation, splits):
    """``(args, kwargs)`` of ``fit`` in ``situation``.

    ``splits`` maps ``"train"`` and (if the source has one) ``"val"`` to
    ``(X, y, groups)``. A situation that needs a validation split the source
    lacks gets None (the caller skips it and says so).
    """
    X, y, g = splits["train"]
    args = (X, y, g if situation.train_groups else None)
    if not situation.validation:
        return args, {}
    if splits.get("val") is None:
        return None
    X_val, y_val, g_val = splits["val"]
    kwargs = dict(X_val=X_val, y_val=y_val)
    if situation.val_groups:
        kwargs["groups_val"] = g_val
    return args, kwargs


def adapt(estimator, groups_use, situation, seed):
    """The head of a registry line as it runs in ``situation``.

    A head whose line says it needs group labels (``groups_use ==
    "required"``) runs behind an :class:`~skhsfm.groups.InferredGroupsClassifier`
    in a situation without any, the way a user without labels would run it;
    every other head is returned as it is (heads that use groups when given
    infer or do without them themselves).
    """
    if groups_use != "required" or situation.has_groups:
        return estimator
    from skhsfm.groups import InferredGroupsClassifier

    return InferredGroupsClassifier(estimator, random_state=seed)


def reference_label(settings):
    """The table label of ``--reference``: in the validation-groups situation
    when it is run (DFR's own setting), else in the first one."""
    if settings.reference is None:
        return None
    label = _label(settings.reference, settings)
    (entry,) = [entry for entry in _HEADS if entry.key == settings.reference]
    if entry.groups == "unused":
        return label  # fit once, without a situation tag
    situations = settings.situations
    keys = [s.key for s in situations]
    where = situations[keys.index("val")] if "val" in keys else situations[0]
    return labelled(label, where, situations)


# ------------------------------------------------------------ heads


def _arguments(entry, seed, init, settings):
    """The arguments ``skhsfm benchmark`` gives the head of registry line
    ``entry``: the ones among its parameters of ``random_state`` (the seed),
    ``device``, ``init_coef``/``init_intercept`` (the :class:`~skhsfm.LinearHead`
    ``init``; None: the head's default start) and its budget."""
    takes = entry.parameters
    given = {"random_state": seed, "device": str(settings.device)}
    if init is not None:
        given.update(init_coef=init.coef, init_intercept=init.intercept)
    if entry.key in settings.budgets:
        given[entry.budget[1]] = settings.budgets[entry.key]
    return {
        name: value
        for name, value in given.items()
        if name in takes and value is not None
    }


def _estimators(methods, seed, init, settings):
    """``[(entry, label, estimator)]`` for the requested methods, in table
    order (the label without the situation)."""
    return [
        (entry, _label(entry.key, settings), _build(entry, seed, init, settings))
        for entry in _HEADS
        if entry.key in methods
    ]


def _build(entry, seed, init, settings):
    """The head of registry line ``entry``; with ``--preset``, a head that has
    presets (a ``from_preset`` constructor) is built from the preset, the
    benchmark's arguments overriding it."""
    arguments = _arguments(entry, seed, init, settings)
    if settings.preset is not None and _has_presets(entry):
        return entry.estimator.from_preset(settings.preset, **arguments)
    return entry.estimator(**arguments)


def _has_presets(entry):
    return callable(getattr(entry.estimator, "from_preset", None))


def _label(method, settings):
    """The table label of a ``--methods`` name (without the situation)."""
    (entry,) = [entry for entry in _HEADS if entry.key == method]
    if settings.preset is not None and _has_presets(entry):
        return f"{entry.label} (preset {settings.preset})"
    return entry.label


def _score(y_true, y_pred, groups, group_names):
    from skhsfm.metrics import group_accuracy_report

    report = group_accuracy_report(y_true, y_pred, groups=groups)
    by_name = {}
    for label, accuracy in report.by_group.items():
        index = int(label)
        name = group_names[index] if 0 <= index < len(group_names) else str(label)
        by_name[name] = float(accuracy)
    return {
        "worst_group_accuracy": float(report.worst),
        "mean_accuracy": float(report.mean),
        "group_accuracy": by_name,
    }


def _details(estimator):
    """The fitted estimator's selected epoch, score and hyperparameters: its
    numeric ``best_*_`` attributes (those of the head inside an
    :class:`~skhsfm.groups.InferredGroupsClassifier`)."""
    estimator = getattr(estimator, "estimator_", estimator)
    details = {}
    for name in sorted(vars(estimator)):
        value = getattr(estimator, name)
        if not (name.startswith("best_") and name.endswith("_")):
            continue
        if isinstance(value, (int, float, np.integer, np.floating)):
            details[name[:-1]] = value.item() if hasattr(value, "item") else value
    return details


# ------------------------------------------------------------ one seed


def evaluate_seed(emb, seed, settings, reporter, notes):
    """Fit and score every requested method in every requested situation on
    one seed's embeddings; returns the records (one per fitted method)."""
    X_test, y_test, g_test = emb.splits["test"]
    records = []

    def add(label, pred, seconds, details=None):
        scores = _score(y_test, pred, g_test, emb.group_names)
        records.append(
            {
                "seed": int(seed),
                "method": label,
                **scores,
                "fit_seconds": None if seconds is None else float(seconds),
                "details": details or {},
            }
        )
        fit = "no fit" if seconds is None else f"fit {seconds:.1f} s"
        reporter.log(
            f"seed {seed}: {label:<26} test worst-group "
            f"{scores['worst_group_accuracy']:.3f}, mean "
            f"{scores['mean_accuracy']:.3f} ({fit})"
        )

    # heads with init_coef start from the backbone's head, or (None) from
    # their default
    init = emb.head if settings.init == "backbone" else None
    if "erm" in settings.methods and emb.head is not None:
        # the backbone's own last layer is an ERM head too, needing no fit
        add(ERM_BACKBONE, emb.head.predict(X_test), None)
    runs = []
    for number, situation in enumerate(settings.situations):
        call = fit_call(situation, emb.splits)
        if call is None:
            notes.setdefault(f"[{situation.tag}]", []).append(
                f"seed {seed}: not run: the source has no validation split"
            )
            continue
        # the backbone's head was trained on the rows a head without a
        # validation split holds out: no start for it
        start = init if situation.validation else None
        for entry, label, estimator in _estimators(
            settings.methods, seed, start, settings
        ):
            if entry.groups == "unused" and number > 0:
                continue  # a head that ignores groups and X_val: one fit is enough
            if entry.groups != "unused":
                label = labelled(label, situation, settings.situations)
            estimator = adapt(estimator, entry.groups, situation, seed)
            runs.append((label, estimator, call))
    bar = reporter.bar(len(runs), f"seed {seed}: methods", unit="method")
    try:
        for label, estimator, (args, kwargs) in runs:
            bar.set_postfix_str(label)
            sink = notes.setdefault(label, [])
            tic = time.perf_counter()
            try:
                with collect_warnings(sink):
                    estimator.fit(*args, **kwargs)
            except ValueError as exc:
                if len(settings.situations) == 1:
                    raise  # the run's one situation: the error is the user's to see
                # a head that cannot run in one of several situations
                sink.append(f"seed {seed}: not run: {exc}")
                reporter.log(f"seed {seed}: {label}: not run: {exc}")
                bar.update(1)
                continue
            seconds = time.perf_counter() - tic
            add(label, estimator.predict(X_test), seconds, _details(estimator))
            bar.update(1)
    finally:
        bar.close()
    return records
