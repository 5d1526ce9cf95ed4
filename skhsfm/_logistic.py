"""scikit-learn's lbfgs logistic regression of ``scale * X``, without the copy,
and the scale every head uses (:func:`rms_scale`).

HSFM fits its initial head on the support pool rescaled by one scalar
(``rescale=True``). Forming ``scale * X`` costs a float64 copy of ``X``
(twice the size of a float32 ``X``); :func:`scaled_logistic_regression`
minimises the very objective :class:`~sklearn.linear_model.LogisticRegression`
minimises on that copy (``penalty="l2"``, ``solver="lbfgs"``, intercept
unpenalised, multinomial for more than two classes), with the same solver,
options and starting point, but forms each row block of ``scale * X`` in
float64 only while it is used. The iterates are those of scikit-learn up to
floating-point rounding (the sums run in another order), so the fitted head is
the same up to rounding, not merely up to the solver's tolerance, and fits of
``X`` and ``c * X`` stay equal.

Why not fit ``X`` with ``C * scale**2`` (the same optimum)? L-BFGS is not
invariant to the scale of the data: it would stop at another point within its
tolerance, which for a weakly regularised head can be far from the old one.
"""

import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning

__all__ = ["rms_scale", "scaled_logistic_regression"]


def rms_scale(X, *, name="X", block=4096):
    """The scalar that brings the root-mean-square coordinate of ``X`` to 1.

    The one scale convention of every head (``rescale=True``): the solvers
    work on ``rms_scale(X) * X``, a problem of the same size whatever the
    units of the embeddings, and the scalar is folded back into ``coef_``, so
    ``X`` and ``c * X`` give the same predictions up to rounding.

    Summed in float64 over row blocks, so a large float32 pool is neither
    copied whole nor summed in float32. Sums of squares that overflow or
    underflow float64 (entries beyond about 1e150 or below 1e-150) are redone
    relative to the largest entry.

    Raises
    ------
    ValueError
        When every entry of ``X`` is 0 (nothing a head can learn from), or
        the scale is not representable; the message names ``name``.
    """
    total = 0.0
    for start in range(0, X.shape[0], block):
        rows = np.asarray(X[start : start + block], dtype=np.float64).ravel()
        total += float(rows @ rows)
    if 0.0 < total < np.inf:
        return 1.0 / np.sqrt(total / X.size)
    peak = 0.0
    for start in range(0, X.shape[0], block):
        rows = np.asarray(X[start : start + block], dtype=np.float64)
        peak = max(peak, float(np.max(np.abs(rows), initial=0.0)))
    if peak == 0.0:
        raise ValueError(
            f"{name} is all zeros ({X.shape[0]} rows x {X.shape[1]} features): "
            "a linear head cannot learn from it. Check how the embeddings were "
            "computed."
        )
    total = 0.0
    for start in range(0, X.shape[0], block):
        # out of place: for float64 input, asarray gives a view of X itself
        rows = np.asarray(X[start : start + block], dtype=np.float64).ravel() / peak
        total += float(rows @ rows)
    with np.errstate(over="ignore"):
        scale = 1.0 / (peak * np.sqrt(total / X.size))
    if not 0.0 < scale < np.inf:
        raise ValueError(
            f"{name} has entries of size {peak:.3g}, too extreme to rescale in "
            "float64; multiply it by a power of ten first."
        )
    return scale


def _loss_gradient(w, X, y, scale, l2, n_classes, block_rows, sample_weight=None):
    """The objective of ``LinearModelLoss`` on ``scale * X`` and its gradient.

    ``w`` is laid out as scikit-learn's lbfgs path lays it out: ``(d + 1,)``
    for two classes, else ``(n_classes, d + 1)`` raveled in Fortran order.
    """
    n, d = X.shape
    binary = n_classes == 2
    if binary:
        W, b = w[None, :d], w[d:]
    else:
        full = w.reshape((n_classes, d + 1), order="F")
        W, b = full[:, :d], full[:, d]
    loss = 0.0
    grad_W = np.zeros_like(W)
    grad_b = np.zeros_like(b)
    for start in range(0, n, block_rows):
        block = X[start : start + block_rows].astype(np.float64)
        block *= scale  # the values of the copy ``X * scale``
        raw = block @ W.T + b
        labels = y[start : start + block_rows]
        sw = None
        if sample_weight is not None:
            sw = sample_weight[start : start + block_rows]
        if binary:
            raw = raw[:, 0]
            per_row = np.logaddexp(0.0, raw) - labels * raw
            pointwise = (expit(raw) - labels)[:, None]
        else:
            lse = logsumexp(raw, axis=1)
            rows = np.arange(raw.shape[0])
            per_row = lse - raw[rows, labels]
            pointwise = np.exp(raw - lse[:, None])
            pointwise[rows, labels] -= 1.0
        if sw is not None:
            per_row = per_row * sw
            pointwise *= sw[:, None]
        loss += float(np.sum(per_row))
        grad_W += pointwise.T @ block
        grad_b += pointwise.sum(axis=0)
    loss = loss / n + 0.5 * l2 * float(np.sum(W * W))
    grad_W = grad_W / n + l2 * W
    grad_b = grad_b / n
    if binary:
        return loss, np.concatenate([grad_W[0], grad_b])
    return loss, np.hstack([grad_W, grad_b[:, None]]).ravel(order="F")


def scaled_logistic_regression(
    X,
    y,
    n_classes,
    *,
    C=1.0,
    scale=1.0,
    max_iter=1000,
    tol=1e-4,
    block_rows=None,
    sample_weight=None,
    return_n_iter=False,
    fix="Increase erm_C's regularisation (lower erm_C) or pass init_coef.",
):
    """``LogisticRegression(C=C, tol=tol, max_iter=max_iter).fit(scale * X, y)``
    without forming ``scale * X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 or float64; read block by block, never copied whole.
    y : ndarray of int of shape (n_samples,)
        Encoded labels ``0 .. n_classes - 1``, every class present.
    n_classes : int
    C, max_iter, tol : as in :class:`~sklearn.linear_model.LogisticRegression`.
    scale : float
        The scalar multiplying ``X``.
    block_rows : int or None, default=None
        Rows of ``scale * X`` formed at a time (float64). None: 1 MiB worth,
        small enough to stay in the CPU cache between the two products that
        use it (larger blocks are several times slower).
    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Per-row weights with mean 1 (so that ``C`` keeps its meaning), as
        ``LogisticRegression.fit(..., sample_weight=...)`` takes them.
    return_n_iter : bool, default=False
        Also return the number of L-BFGS iterations.
    fix : str
        What the convergence warning tells the user to do (it names the
        caller's parameters).

    Returns
    -------
    coef : ndarray of shape (1, n_features) or (n_classes, n_features)
        For ``scale * X``, in scikit-learn's convention.
    intercept : ndarray of shape (1,) or (n_classes,)
    n_iter : int
        L-BFGS iterations, only with ``return_n_iter=True``.
    """
    n, d = X.shape
    if block_rows is None:
        block_rows = max(64, 2**17 // d)
    y = np.asarray(y, dtype=np.intp)
    labels = y.astype(np.float64) if n_classes == 2 else y
    size = d + 1 if n_classes == 2 else n_classes * (d + 1)
    result = minimize(
        _loss_gradient,
        np.zeros(size),
        method="L-BFGS-B",
        jac=True,
        args=(
            X,
            labels,
            float(scale),
            1.0 / (C * n),
            n_classes,
            block_rows,
            sample_weight,
        ),  # fmt: skip
        options={
            "maxiter": max_iter,
            "maxls": 50,
            "gtol": tol,
            "ftol": 64 * np.finfo(float).eps,
        },
    )
    if result.status != 0:
        warnings.warn(
            "The initial logistic regression (lbfgs) did not converge: "
            f"{result.message}. {fix}",
            ConvergenceWarning,
            stacklevel=3,
        )
    w = result.x
    if n_classes == 2:
        coef, intercept = w[None, :d].copy(), w[d:].copy()
    else:
        full = w.reshape((n_classes, d + 1), order="F")
        coef, intercept = full[:, :d].copy(), full[:, d].copy()
    if return_n_iter:
        return coef, intercept, int(result.nit)
    return coef, intercept
