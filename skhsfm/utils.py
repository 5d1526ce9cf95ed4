"""Public helpers: the registry of skhsfm's estimators.

:func:`all_estimators` lists the package's estimators as
:func:`sklearn.utils.discovery.all_estimators` lists scikit-learn's. It reads
one list, ``_REGISTRY`` below, which the rest of the package reads too:

- ``skhsfm benchmark`` builds its methods from the registered heads (the
  ``--methods`` names, the table labels, the budget options, which arguments
  each head is given);
- ``tests/test_common.py`` runs scikit-learn's estimator checks on every
  registered estimator;
- ``tests/test_docs.py`` checks that every registered estimator has its API
  page and that every public estimator is registered.

Adding a head is its module, its test and one registry line
(``docs/developers.rst``, "Adding a head").
"""

from dataclasses import dataclass, field

from skhsfm._hsfm import HSFMClassifier
from skhsfm.baselines import (
    AFRClassifier,
    DFRClassifier,
    DPEClassifier,
    ERMHeadClassifier,
    SELFClassifier,
)
from skhsfm.embedding import BackboneEmbedder
from skhsfm.groups import GroupInferrer, InferredGroupsClassifier

__all__ = ["all_estimators"]

#: What a registered head does with group labels, at its default parameters.
_GROUP_USES = {
    "required": "needs them (for the hard pool) and raises without them",
    "optional": "uses them when given (stratification, selection, balance)",
    "unused": "accepts and ignores them",
}


@dataclass(frozen=True)
class _Entry:
    """One registry line.

    Attributes
    ----------
    estimator : type
        The estimator class.
    type : {"classifier", "transformer"} or None
        Its scikit-learn type; None for an estimator of none of them (it is
        listed only when ``type_filter`` is None).
    key : str or None, default=None
        A head's short name: its ``skhsfm benchmark --methods`` name and the
        prefix of its budget option. None: not a head the benchmark compares.
    label : str or None, default=None
        A head's name in the benchmark's tables.
    budget : tuple of (str, str) or None, default=None
        ``(word, parameter)``: ``skhsfm benchmark --KEY-WORD N`` sets the
        head's ``parameter`` to N (e.g. ``("epochs", "n_epochs")`` gives
        ``--hsfm-epochs``). None: no budget option.
    groups : {"required", "optional", "unused"}, default="unused"
        What the head does with group labels (see ``_GROUP_USES``); the common
        tests check it.
    check_params : dict, default={}
        Parameters that make a fit on scikit-learn's tiny check data fast and
        group-free (the checks never pass ``groups``).
    """

    estimator: type
    type: str | None
    key: str | None = None
    label: str | None = None
    budget: tuple | None = None
    groups: str = "unused"
    check_params: dict = field(default_factory=dict)

    @property
    def name(self):
        """The class name."""
        return self.estimator.__name__

    @property
    def parameters(self):
        """The names of the estimator's parameters (``get_params``)."""
        return frozenset(self.check_instance().get_params(deep=False))

    @property
    def budget_option(self):
        """``--KEY-WORD`` of the budget, or None."""
        return None if self.budget is None else f"--{self.key}-{self.budget[0]}"

    def check_instance(self):
        """An instance with ``check_params``, for scikit-learn's checks."""
        return self.estimator(**self.check_params)


# ----------------------------------------------------------------- registry
# One line per estimator; the heads in the benchmark's table order. A line is
# _Entry(class, type, key, label, budget, groups, check_params): see _Entry.

_FAST_HSFM = dict(n_epochs=2, support_size=4, hard_size=8, inner_steps=3, outer_steps=2)
_FAST_AFR = dict(gamma=(1.0, 4.0), reg_lambda=(0.0, 0.1), n_epochs=20, device="cpu")

_REGISTRY = (
    _Entry(ERMHeadClassifier, "classifier", "erm", "ERM (logistic regression)"),
    _Entry(
        DFRClassifier, "classifier", "dfr", "DFR", ("models", "n_models"), "required",
        dict(balance="classes", n_models=3, random_state=0),
    ),
    _Entry(
        AFRClassifier, "classifier", "afr", "AFR", ("epochs", "n_epochs"), "optional",
        dict(_FAST_AFR, random_state=0),
    ),
    _Entry(
        DPEClassifier, "classifier", "dpe", "DPE", None, "optional",
        # the checks' data have 2 features: standardising each row over its
        # own entries maps every row to +-(1, -1)/sqrt(2), so the checks run
        # DPE on the raw rows (standardize_rows=True is tested in test_dpe.py)
        dict(n_members=3, n_epochs=5, standardize_rows=False, device="cpu",
             random_state=0),
    ),
    _Entry(
        SELFClassifier, "classifier", "self", "SELF", None, "optional",
        dict(n_selected=(10, 40), learning_rate=(1.0, 10.0), random_state=0),
    ),
    _Entry(
        HSFMClassifier, "classifier", "hsfm", "HSFM", ("epochs", "n_epochs"),
        "optional", dict(_FAST_HSFM, random_state=0),
    ),
    _Entry(BackboneEmbedder, "transformer"),
    _Entry(GroupInferrer, None, check_params=dict(random_state=0)),
    _Entry(
        InferredGroupsClassifier, "classifier",
        check_params=dict(
            estimator=DFRClassifier(n_models=2, random_state=0), random_state=0
        ),
    ),
)  # fmt: skip

#: The values ``type_filter`` takes.
_TYPES = {
    "classifier": "scikit-learn classifiers",
    "transformer": "scikit-learn transformers",
    "head": "heads compared by ``skhsfm benchmark`` (they have a ``key``)",
}


def _registry(type_filter=None):
    """The registry lines of the estimators of ``type_filter``, in registry
    order (the benchmark's table order for heads)."""
    if type_filter is None:
        return list(_REGISTRY)
    if isinstance(type_filter, str):
        wanted = [type_filter]
    else:
        try:
            wanted = list(type_filter)
        except TypeError:  # not a string nor a list of them
            wanted = []
    if not wanted or any(not isinstance(v, str) or v not in _TYPES for v in wanted):
        raise ValueError(
            f"type_filter must be None, one of {sorted(_TYPES)} or a list of them; "
            f"got {type_filter!r}."
        )
    return [
        entry
        for entry in _REGISTRY
        if entry.type in wanted or ("head" in wanted and entry.key is not None)
    ]


def all_estimators(type_filter=None):
    """Every estimator of skhsfm, as ``(name, class)`` pairs sorted by name.

    The one list the ``skhsfm benchmark`` command, the common tests and the
    API reference read. Splitters (:class:`~skhsfm.GroupStratifiedKFold`) are
    not estimators and are not listed, as in scikit-learn.

    Parameters
    ----------
    type_filter : {"classifier", "transformer", "head"} or list of such str, \
            default=None
        Which estimators to list: ``"classifier"`` and ``"transformer"`` as in
        scikit-learn; ``"head"`` the group-robust linear heads that
        ``skhsfm benchmark`` compares (ERM head, DFR, AFR, DPE, SELF, HSFM).
        A list gives the estimators of any of its types; None every estimator.

    Returns
    -------
    estimators : list of tuple of (str, type)
        Class name and class, sorted by name.

    See Also
    --------
    sklearn.utils.discovery.all_estimators : scikit-learn's own list.

    Examples
    --------
    >>> from skhsfm.utils import all_estimators
    >>> heads = [name for name, _ in all_estimators(type_filter="head")]
    >>> heads[:3]
    ['AFRClassifier', 'DFRClassifier', 'DPEClassifier']
    >>> heads[3:]
    ['ERMHeadClassifier', 'HSFMClassifier', 'SELFClassifier']
    >>> [name for name, _ in all_estimators(type_filter="transformer")]
    ['BackboneEmbedder']
    """
    pairs = {entry.name: entry.estimator for entry in _registry(type_filter)}
    return sorted(pairs.items())
