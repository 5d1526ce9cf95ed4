"""scikit-learn's estimator checks on every estimator of the package."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skhsfm import HSFMClassifier

FAST = dict(n_epochs=2, support_size=4, hard_size=8, inner_steps=3, outer_steps=2)


def _estimators():
    return [HSFMClassifier(random_state=0, **FAST)]


@parametrize_with_checks(_estimators())
def test_sklearn_compatible(estimator, check):
    check(estimator)
