"""The HSFM bilevel loop as small pure torch functions.

Notation (the paper's): a linear head ``theta = (W, b)`` with ``W`` of shape
``(n_classes, d)``; support embeddings ``H`` of shape ``(n_support, d)`` with
one-hot labels ``Y``; a hard set ``(X_hard, y_hard)``.

The inner adaptation is ``T`` plain gradient-descent steps of size ``alpha`` on
the mean cross-entropy of the head over ``(H, Y)``. The outer objective is the
cross-entropy of the adapted head on the hard set, differentiated with respect
to ``H`` through the whole unrolled inner loop.

For a linear softmax head every inner gradient has a closed form, so
:func:`hypergradient` runs the unrolled loop forward with those formulas and
then walks it backwards by hand (reverse-mode differentiation written out).
That gives exactly the gradient autograd would compute through a
``create_graph=True`` loop (:func:`hypergradient_autograd`, the straightforward
reference kept for tests and benchmarks) with a fraction of the operations and
no double-backward graph.
"""

import contextlib
import time

import numpy as np
import torch

from skhsfm._torch import to_tensor

__all__ = [
    "select_hard_set",
    "hypergradient",
    "hypergradient_autograd",
    "clip_norm_",
    "Adam",
    "head_gradient",
    "run_hsfm",
    "MetaResult",
]


def _logits(X, W, b):
    return torch.addmm(b, X, W.T)


def select_hard_set(logits, y, hard_size, n_classes):
    """Indices of the ``hard_size`` highest-loss rows of each class.

    Parameters
    ----------
    logits : Tensor (n, C)
        The current head's logits on the hard pool (computed once per epoch and
        shared with the epoch's scoring).
    y : LongTensor (n,)
    hard_size : int
    n_classes : int

    A class with fewer than ``hard_size`` rows contributes all of them. Ties are
    broken by row order, so the selection is deterministic.

    Returns
    -------
    LongTensor of indices into the rows, grouped by class.
    """
    with torch.no_grad():
        losses = -torch.log_softmax(logits, dim=1).gather(1, y[:, None]).squeeze(1)
    picked = []
    for k in range(n_classes):
        members = torch.nonzero(y == k).squeeze(1)
        if members.numel() == 0:
            continue
        m = min(hard_size, members.numel())
        # stable descending sort: equal losses keep their row order
        order = torch.sort(losses[members], descending=True, stable=True).indices
        picked.append(members[order[:m]])
    return torch.cat(picked)


def head_gradient(H, Y, W, b):
    """Mean cross-entropy of the head on ``(H, Y)`` and its gradient.

    Parameters
    ----------
    H : Tensor (n, d); Y : one-hot Tensor (n, C); W : (C, d); b : (C,).

    Returns
    -------
    loss : 0-d Tensor; grad_W : (C, d); grad_b : (C,).
    """
    Z = _logits(H, W, b)
    P = torch.softmax(Z, dim=1)
    loss = -(torch.log_softmax(Z, dim=1) * Y).sum() / H.shape[0]
    G = (P - Y) / H.shape[0]
    return loss, G.T @ H, G.sum(0)


def hypergradient(H, Y, W0, b0, X_hard, Y_hard, lr, steps, method="auto"):
    """Outer loss and its gradient with respect to the support embeddings ``H``.

    Parameters
    ----------
    H : Tensor (n_support, d)
        Current support embeddings.
    Y : Tensor (n_support, C)
        One-hot support labels.
    W0, b0 : Tensors (C, d) and (C,)
        The head the inner loop starts from.
    X_hard : Tensor (n_hard, d)
    Y_hard : Tensor (n_hard, C)
        The hard set and its one-hot labels.
    lr : float
        Inner step size (alpha).
    steps : int
        Number of inner gradient-descent steps (T).
    method : {"auto", "primal", "gram"}, default="auto"
        How the inner loop is run; both give the same result. "primal" updates
        ``W`` itself (two passes over ``H`` per step and direction), "gram"
        works with ``H @ H.T`` and never forms the intermediate heads (cheap per
        step, one ``n_support**2 * d`` product up front). "auto" picks "gram"
        when ``n_support <= 4 * steps * C``, where that product is the cheaper.

    Returns
    -------
    loss : float
        Mean cross-entropy of the adapted head on the hard set.
    grad_H : Tensor (n_support, d)

    Notes
    -----
    Write ``G_t = (softmax(Z_t) - Y) / n`` for the inner loss gradient at the
    logits, ``A_t = G_0 + ... + G_{t-1}``, so that ``W_t = W0 - lr A_t^T H``, and
    ``dZ_t`` for the gradient of the outer loss at ``Z_t``, with
    ``B_t = dZ_t + ... + dZ_{T-1}``. Reverse-mode differentiation through the
    unrolled loop gives

        grad_H = -lr A_T gW_T + B_0 W0 - lr U (V^T H),

    with ``gW_T`` the outer gradient at the adapted head,
    ``U = [G_0 .. G_{T-1}, dZ_0 .. dZ_{T-1}]`` and
    ``V = [B_1 .. B_T, A_0 .. A_{T-1}]``: the contributions of all steps are
    gathered into one product with ``H`` instead of one ``(n, d)`` update per
    step.
    """
    n, n_classes = Y.shape
    if method == "auto":
        method = "gram" if n <= 4 * steps * n_classes else "primal"
    with torch.no_grad():
        if method == "gram":
            K = H @ H.T
            Z0 = _logits(H, W0, b0)
        A = torch.zeros_like(Y)
        As, Gs, Ps = [], [], []
        W, b = W0, b0
        for _ in range(steps):
            if method == "gram":
                # Z_t = H W_t^T + b_t with W_t = W0 - lr A_t^T H, b_t = b0 - lr 1^T A_t
                Z = Z0 - lr * (K @ A + A.sum(0))
            else:
                Z = _logits(H, W, b)
            P = torch.softmax(Z, dim=1)
            G = (P - Y) / n
            As.append(A)
            Gs.append(G)
            Ps.append(P)
            A = A + G
            if method == "primal":
                W = W - lr * (G.T @ H)
                b = b - lr * G.sum(0)
        if method == "gram":
            W = W0 - lr * (A.T @ H)
            b = b0 - lr * A.sum(0)
        Zh = _logits(X_hard, W, b)
        loss = -(torch.log_softmax(Zh, dim=1) * Y_hard).sum() / X_hard.shape[0]
        Gh = (torch.softmax(Zh, dim=1) - Y_hard) / X_hard.shape[0]
        gW_T = Gh.T @ X_hard
        gW, gb = gW_T, Gh.sum(0)
        if method == "gram":
            HgW_T = H @ gW_T.T
        B = torch.zeros_like(Y)
        Bs, dZs = [], []
        for t in reversed(range(steps)):
            # H gW_{t+1}^T, the outer gradient at W_{t+1} seen from the support set
            HgW = HgW_T + K @ B if method == "gram" else H @ gW.T
            dP = -lr * (HgW + gb) / n
            P = Ps[t]
            dZ = P * (dP - (dP * P).sum(1, keepdim=True))
            Bs.append(B)
            dZs.append(dZ)
            B = B + dZ
            gb = gb + dZ.sum(0)
            if method == "primal" and t > 0:
                gW = gW + dZ.T @ H
        U = torch.cat(Gs + dZs[::-1], dim=1)
        V = torch.cat(Bs[::-1] + As, dim=1)
        grad_H = -lr * (A @ gW_T) + B @ W0 - lr * (U @ (V.T @ H))
    return float(loss), grad_H


def hypergradient_autograd(H, Y, W0, b0, X_hard, Y_hard, lr, steps):
    """Reference implementation of :func:`hypergradient` with plain autograd.

    The straightforward way: unroll the inner loop with
    ``torch.autograd.grad(..., create_graph=True)`` and back-propagate the hard-set
    loss to ``H``. Kept for tests (both must agree) and for the speed benchmark.
    """
    H = H.detach().requires_grad_(True)
    W = W0.detach().clone().requires_grad_(True)
    b = b0.detach().clone().requires_grad_(True)
    labels = Y.argmax(1)
    for _ in range(steps):
        inner = torch.nn.functional.cross_entropy(_logits(H, W, b), labels)
        gW, gb = torch.autograd.grad(inner, (W, b), create_graph=True)
        W = W - lr * gW
        b = b - lr * gb
    outer = torch.nn.functional.cross_entropy(_logits(X_hard, W, b), Y_hard.argmax(1))
    (grad_H,) = torch.autograd.grad(outer, H)
    return float(outer.detach()), grad_H


def clip_norm_(grad, max_norm):
    """Scale ``grad`` in place so that its Frobenius norm is at most ``max_norm``."""
    norm = torch.linalg.vector_norm(grad)
    if norm > max_norm:
        grad.mul_(max_norm / (norm + 1e-6))
    return grad


class Adam:
    """Adam (Kingma & Ba) over a list of tensors, updated in place.

    A few lines instead of ``torch.optim.Adam`` so the meta-loop can hand it
    closed-form gradients without ``.grad`` bookkeeping; same update rule as
    torch's default (no weight decay, no amsgrad).
    """

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads):
        self.t += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.t
        bias2 = 1 - beta2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v / bias2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)


class MetaResult:
    """What one HSFM run returns: the selected head and support set (numpy),
    the selected epoch, its score and the per-epoch history."""

    def __init__(self, W, b, H, hard_set, best_epoch, best_score, history):
        self.W, self.b, self.H = W, b, H
        self.hard_set = hard_set
        self.best_epoch, self.best_score = best_epoch, best_score
        self.history = history


def run_hsfm(
    H0,
    y_support,
    W0,
    b0,
    X_hard,
    y_hard,
    *,
    score,
    feature_scale=1.0,
    n_epochs,
    hard_size,
    outer_steps,
    outer_lr,
    inner_steps,
    inner_lr,
    max_grad_norm,
    device,
    log=None,
):
    """The HSFM epoch loop.

    Parameters
    ----------
    H0 : ndarray (n_support, d)
        Initial support embeddings.
    y_support : ndarray of int (n_support,)
        Encoded support labels.
    W0, b0 : ndarray (C, d), (C,)
        Initial head.
    X_hard : ndarray (n_hard, d)
    y_hard : ndarray of int (n_hard,)
        Hard pool.
    feature_scale : float, default=1.0
        The loop runs on ``feature_scale * H0`` and ``feature_scale * X_hard``
        (scaled on the device, without a float64 host copy); the returned
        ``H`` is on that scale too.
    score : callable
        ``score(pred) -> (selection_score, mean_accuracy)`` for encoded hard-pool
        predictions (numpy). The epoch with the highest selection score is kept,
        ties going to the later epoch.
    device : torch.device
    log : callable or None
        Called with one line of text per epoch.

    Returns
    -------
    MetaResult
    """
    n_classes = W0.shape[0]
    with _threads_for(device, H0.shape[0] * H0.shape[1]):

        def tensor(a, dtype=torch.float32):
            return to_tensor(a, device, dtype)

        # out of place: to_tensor may share memory with the caller's arrays
        H = tensor(H0) * feature_scale
        Y = torch.nn.functional.one_hot(
            tensor(y_support, torch.long), n_classes
        ).float()
        W, b = tensor(W0).clone(), tensor(b0).clone()
        Xh = tensor(X_hard) * feature_scale
        yh = tensor(y_hard, torch.long)
        Yh = torch.nn.functional.one_hot(yh, n_classes).float()

        support_opt = Adam([H], lr=outer_lr)
        head_opt = Adam([W, b], lr=inner_lr)
        history = {
            "epoch": [],
            "loss": [],
            "worst_group_accuracy": [],
            "mean_accuracy": [],
            "seconds": [],
        }
        best = None
        with torch.no_grad():
            logits = _logits(Xh, W, b)
        for epoch in range(1, n_epochs + 1):
            start = time.perf_counter()
            hard, outer_loss = _epoch(
                H, Y, W, b, Xh, yh, Yh, logits, support_opt, head_opt,
                hard_size=hard_size, outer_steps=outer_steps,
                inner_steps=inner_steps, inner_lr=inner_lr,
                max_grad_norm=max_grad_norm,
            )  # fmt: skip
            with torch.no_grad():
                # the new head's logits: scored now, and pick the next hard set
                logits = _logits(Xh, W, b)
                pred = logits.argmax(1).cpu().numpy()
            selection, accuracy = score(pred)
            seconds = time.perf_counter() - start
            for key, value in zip(
                history, (epoch, outer_loss, selection, accuracy, seconds)
            ):
                history[key].append(value)
            if best is None or selection >= best[1]:
                best = (
                    epoch,
                    selection,
                    W.cpu().numpy().copy(),
                    b.cpu().numpy().copy(),
                    H.cpu().numpy().copy(),
                    hard.cpu().numpy().copy(),
                )
            if log is not None:
                log(
                    f"epoch {epoch:3d}/{n_epochs}  outer loss {outer_loss:.4f}  "
                    f"hard-pool worst-group acc {selection:.4f}  mean acc "
                    f"{accuracy:.4f}  ({seconds:.2f}s)"
                )
        epoch, selection, W_best, b_best, H_best, hard_best = best
        return MetaResult(
            W_best.astype(np.float64),
            b_best.astype(np.float64),
            H_best.astype(np.float64),
            hard_best,
            epoch,
            selection,
            {key: np.asarray(values) for key, values in history.items()},
        )


def _epoch(
    H, Y, W, b, Xh, yh, Yh, logits, support_opt, head_opt, *, hard_size, outer_steps,
    inner_steps, inner_lr, max_grad_norm,
):  # fmt: skip
    """One HSFM epoch, updating ``H`` and the head ``(W, b)`` in place.

    Steps 1-3 of the algorithm: pick the hard set with the current head, meta-
    update the support embeddings ``outer_steps`` times, then train the head on
    them. Returns the hard set's indices and the mean outer loss.
    """
    hard = select_hard_set(logits, yh, hard_size, Y.shape[1])
    X_set, Y_set = Xh[hard], Yh[hard]
    losses = []
    for _ in range(outer_steps):
        loss, grad_H = hypergradient(H, Y, W, b, X_set, Y_set, inner_lr, inner_steps)
        support_opt.step([clip_norm_(grad_H, max_grad_norm)])
        losses.append(loss)
    for _ in range(inner_steps):
        _, grad_W, grad_b = head_gradient(H, Y, W, b)
        head_opt.step([grad_W, grad_b])
    return hard, (sum(losses) / len(losses) if losses else float("nan"))


# Below this many support-set entries (n_support * d) the inner-loop matrices are
# so small that extra intra-op threads cost more in synchronisation than they
# save (measured: a 32x2048 support set ran 3x slower with 2 threads than with 1
# on a busy 2-core machine), so the loop runs single-threaded.
_SMALL_SUPPORT = 2**18


@contextlib.contextmanager
def _threads_for(device, support_entries):
    """Run small CPU problems with one torch thread, restoring the setting after."""
    if device.type != "cpu" or support_entries >= _SMALL_SUPPORT:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
