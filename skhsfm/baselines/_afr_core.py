"""AFR's training as a pure function: numpy in, :class:`AFRResult` out.

Automatic Feature Reweighting (Qiu et al., 2023) retrains an ERM head on
held-out rows weighted by how badly the ERM head fits them, pulled towards the
ERM head. :func:`run_afr` trains one head per (γ, λ) pair of a grid at once by
full-batch gradient descent and keeps, per pair, the epoch a caller-given
``score`` ranks best on separate selection rows; it knows nothing of groups.
:class:`~skhsfm.baselines.AFRClassifier` is the scikit-learn shell around it.
torch is imported when :func:`run_afr` runs.
"""

from dataclasses import dataclass

import numpy as np

from skhsfm._linear import softmax_head_proba

__all__ = ["AFRResult", "afr_weights", "run_afr", "true_class_proba"]


def afr_weights(p_true, y, gamma):
    """AFR's per-example weights (eq. 2 of Qiu et al., 2023).

    ``w_i = beta_{y_i} * exp(-gamma * p_i)``, normalised to sum to one, where
    ``p_i`` is the ERM head's probability of the true class and
    ``beta_c = n / n_c`` is the inverse frequency of class ``c`` (the paper's
    class-balancing term, as in the authors' ``rebalance_weights``).

    Parameters
    ----------
    p_true : ndarray of shape (n,)
        Probability the initial head gives to each example's true class.
    y : ndarray of int of shape (n,)
        Encoded class of each example.
    gamma : float
        Temperature: 0 gives class-balanced uniform weights; larger values put
        more weight on examples the ERM head gets wrong.

    Returns
    -------
    weights : ndarray of shape (n,)
        Non-negative, summing to one.
    """
    p_true = np.asarray(p_true, dtype=np.float64)
    counts = np.bincount(y)
    weights = np.exp(-gamma * p_true) * (y.shape[0] / counts[y])
    return weights / weights.sum()


def true_class_proba(X, y, W, b, block=1024):
    """The head's probability of each row's true class, in row blocks (the
    float64 scores of a block at a time, not of all of ``X``)."""
    p_true = np.empty(X.shape[0])
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        proba = softmax_head_proba(X[rows], W, b)
        p_true[rows] = proba[np.arange(proba.shape[0]), y[rows]]
    return p_true


@dataclass(frozen=True)
class AFRResult:
    """What one AFR run returns.

    Attributes
    ----------
    W, b : ndarray of shape (n_classes, n_features) and (n_classes,)
        The selected head, one row per class, float64.
    gamma_index, lambda_index : int
        Position of the selected (γ, λ) in the grid.
    epoch : int
        The selected epoch of that pair, 0-based.
    loss : ndarray of shape (n_gamma, n_lambda, n_epochs)
        Weighted cross-entropy plus penalty of every head before each step.
    selection, mean : ndarray of shape (n_gamma, n_lambda, n_epochs)
        The two numbers ``score`` gave every head after each step.
    """

    W: np.ndarray
    b: np.ndarray
    gamma_index: int
    lambda_index: int
    epoch: int
    loss: np.ndarray
    selection: np.ndarray
    mean: np.ndarray


def run_afr(
    X,
    y,
    W0,
    b0,
    X_select,
    *,
    gammas,
    lambdas,
    score,
    n_epochs,
    learning_rate,
    max_grad_norm,
    device,
    log=None,
):
    """Train one AFR head per (γ, λ) pair at once; keep the best epoch.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    y : ndarray of int of shape (n,)
        The rows to reweight and train on, labels encoded.
    W0, b0 : ndarray of shape (n_classes, n_features) and (n_classes,)
        The ERM head: it gives the weights (:func:`afr_weights` of its
        true-class probabilities) and every head starts from it and is pulled
        towards it.
    X_select : ndarray of shape (n_select, n_features)
        The rows that select.
    gammas, lambdas : sequence of float
        The grid: weight temperatures γ and penalty strengths λ.
    score : callable
        ``score(pred) -> (selection, mean)`` for predictions ``pred`` of shape
        ``(n_select, n_heads)`` (encoded, one column per head, heads in
        γ-major grid order), returning two arrays of shape ``(n_heads,)``.
        Each head keeps its epoch of the highest ``(selection, mean)``, the
        earliest on ties; the pair selected is the best of those, the first
        in grid order on ties.
    n_epochs : int
    learning_rate : float
    max_grad_norm : float or None
        Clip each head's gradient to this norm; None does not clip.
    device : str or torch.device
    log : callable or None, default=None
        Called with a line of text every 50 epochs.

    Returns
    -------
    AFRResult
    """
    from skhsfm._utils.torch import one_thread_if_small, resolve_device, to_numpy

    p_true = true_class_proba(X, y, W0, b0)
    weights = np.stack([afr_weights(p_true, y, gamma) for gamma in gammas])
    dev = resolve_device(device)
    grid = _Grid(X, y, weights, lambdas, W0, b0, dev)
    best = _Best(grid)
    history = np.empty((3, grid.n_heads, n_epochs))
    X_s = grid.tensor(X_select)
    # thousands of small steps: one torch thread on a busy CPU (issue 24)
    work = max(X.shape[0], X_select.shape[0]) * X.shape[1] * W0.shape[0]
    with one_thread_if_small(work * grid.n_heads, dev):
        for epoch in range(n_epochs):
            loss = grid.step(learning_rate, max_grad_norm)
            selection, mean = score(grid.predict(X_s))
            best.update(grid, epoch, selection, mean)
            history[:, :, epoch] = (to_numpy(loss), selection, mean)
            if log is not None and (epoch + 1) % 50 == 0:
                log(
                    f"[AFR] epoch {epoch + 1}/{n_epochs}: best selection score "
                    f"so far {best.key[:, 0].max():.4f}"
                )
    head = best.head()
    W, b = best.weights(grid, head)
    shape = (len(gammas), len(lambdas), n_epochs)
    loss, selection, mean = (values.reshape(shape) for values in history)
    return AFRResult(
        W=W,
        b=b,
        gamma_index=head // len(lambdas),
        lambda_index=head % len(lambdas),
        epoch=int(best.epoch[head]),
        loss=loss,
        selection=selection,
        mean=mean,
    )


class _Grid:
    """The grid of heads as one matrix on the device, stepped together.

    Head ``h`` is (γ index ``h // n_lambda``, λ index ``h % n_lambda``). All
    heads are rows of one ``(n_classes * n_heads, n_features)`` matrix,
    class-major (row ``k * n_heads + h``), so logits view as
    ``(n, n_classes, n_heads)`` and a step of the whole grid is two matrix
    products.
    """

    def __init__(self, X, y, weights, lambdas, W0, b0, device):
        from skhsfm._utils.torch import to_tensor, torch

        self.device, self.torch = device, torch
        n_gamma, n_lambda = weights.shape[0], len(lambdas)
        self.n_heads, self.n_classes = n_gamma * n_lambda, W0.shape[0]
        self.X = to_tensor(X, device)
        onehot = torch.nn.functional.one_hot(
            to_tensor(y, device, torch.long), self.n_classes
        )
        self.onehot = onehot.to(self.X.dtype)[:, :, None]
        self.w = to_tensor(np.repeat(weights, n_lambda, axis=0).T[:, None, :], device)
        self.lam = to_tensor(np.tile(lambdas, n_gamma), device)
        self.lam_rows = self.lam.repeat(self.n_classes)
        self.W_init = to_tensor(np.repeat(W0, self.n_heads, axis=0), device)
        self.b_init = to_tensor(np.repeat(b0, self.n_heads), device)
        self.W, self.b = self.W_init.clone(), self.b_init.clone()

    def tensor(self, array):
        from skhsfm._utils.torch import to_tensor

        return to_tensor(array, self.device)

    def rows(self, heads):
        """The matrix rows of the heads selected by a boolean mask, or of one
        head given by its index."""
        if isinstance(heads, int):
            return (
                self.torch.arange(self.n_classes, device=self.device) * (self.n_heads)
                + heads
            )
        return heads.repeat(self.n_classes)

    def step(self, learning_rate, max_grad_norm):
        """One gradient step of every head; returns each head's loss before it."""
        torch, n_classes = self.torch, self.n_classes
        # In-place steps where the values are the same as out of place: the
        # (n, n_classes * n_heads) temporaries dominate the fit's memory.
        logits = self.X @ self.W.T
        logits += self.b
        log_p = torch.log_softmax(logits.view(-1, n_classes, self.n_heads), dim=1)
        del logits
        # d(sum_i w_i CE_i) / d logits = w_i (softmax - onehot)
        dlogits = log_p.exp().sub_(self.onehot).mul_(self.w)
        dlogits = dlogits.view(-1, n_classes * self.n_heads)
        diff_W, diff_b = self.W - self.W_init, self.b - self.b_init
        grad_W = dlogits.T @ self.X + 2 * self.lam_rows[:, None] * diff_W
        grad_b = dlogits.sum(0) + 2 * self.lam_rows * diff_b
        del dlogits
        ce = -(log_p * self.onehot).sum(1)
        del log_p
        penalty = (diff_W.pow(2).sum(1) + diff_b.pow(2)).view(n_classes, -1).sum(0)
        loss = (self.w[:, 0] * ce).sum(0) + self.lam * penalty
        step = torch.full((self.n_heads,), learning_rate, device=self.device)
        if max_grad_norm is not None:
            sq_norm = grad_W.pow(2).sum(1) + grad_b.pow(2)
            norm = sq_norm.view(n_classes, -1).sum(0).sqrt()
            # as torch.nn.utils.clip_grad_norm_, per head
            step = step * torch.clamp(max_grad_norm / (norm + 1e-6), max=1.0)
        step_rows = step.repeat(n_classes)
        self.W = self.W - step_rows[:, None] * grad_W
        self.b = self.b - step_rows * grad_b
        return loss

    def predict(self, X):
        """Encoded predictions of every head on ``X`` (a tensor), as numpy of
        shape ``(n, n_heads)``."""
        from skhsfm._utils.torch import to_numpy

        logits = X @ self.W.T
        logits += self.b
        logits = logits.view(-1, self.n_classes, self.n_heads)
        # argmax over the classes, the first on ties, one class at a time:
        # torch's argmax over a middle dimension is many times slower
        best, pred = logits[:, 0], None
        for k in range(1, self.n_classes):
            better = logits[:, k] > best
            pred = better.long() if pred is None else self.torch.where(better, k, pred)
            best = self.torch.maximum(best, logits[:, k])
        return to_numpy(pred)


class _Best:
    """The best epoch of every head so far: its ``(selection, mean)`` key,
    its epoch and its weights (on the device)."""

    def __init__(self, grid):
        self.key = np.full((grid.n_heads, 2), -1.0)
        self.epoch = np.zeros(grid.n_heads, dtype=np.int64)
        self.W, self.b = grid.W.clone(), grid.b.clone()

    def update(self, grid, epoch, selection, mean):
        """Keep the heads whose ``(selection, mean)`` beat their best so far."""
        better = (selection > self.key[:, 0]) | (
            (selection == self.key[:, 0]) & (mean > self.key[:, 1])
        )
        if not better.any():
            return
        self.key[better] = np.stack([selection, mean], 1)[better]
        self.epoch[better] = epoch
        rows = grid.rows(grid.torch.as_tensor(better, device=grid.device))
        self.W[rows], self.b[rows] = grid.W[rows], grid.b[rows]

    def head(self):
        """The best head: lexicographic ``(selection, mean)``, ties to the
        first in grid order."""
        order = np.lexsort(
            (-np.arange(self.key.shape[0]), self.key[:, 1], self.key[:, 0])
        )
        return int(order[-1])

    def weights(self, grid, head):
        """The best weights of ``head`` as a one-row-per-class numpy head."""
        from skhsfm._utils.torch import to_numpy

        rows = grid.rows(head)
        return (
            to_numpy(self.W[rows]).astype(np.float64),
            to_numpy(self.b[rows]).astype(np.float64),
        )
