"""The pure torch pieces of the bilevel loop against autograd and torch.optim."""

import numpy as np
import pytest
import torch

from skhsfm._meta import (
    Adam,
    clip_norm_,
    head_gradient,
    hypergradient,
    hypergradient_autograd,
    select_hard_set,
)


def _problem(n=12, d=7, C=3, n_hard=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    kw = dict(generator=g, dtype=torch.float64)
    H = torch.randn(n, d, **kw)
    Y = torch.nn.functional.one_hot(torch.arange(n) % C, C).double()
    W, b = torch.randn(C, d, **kw), torch.randn(C, **kw)
    Xh = torch.randn(n_hard, d, **kw)
    Yh = torch.nn.functional.one_hot(torch.arange(n_hard) % C, C).double()
    return H, Y, W, b, Xh, Yh


@pytest.mark.parametrize("C", [2, 3, 5])
@pytest.mark.parametrize("steps", [1, 4])
@pytest.mark.parametrize("lr", [5e-5, 0.3])
@pytest.mark.parametrize("method", ["primal", "gram", "auto"])
def test_hypergradient_matches_autograd(C, steps, lr, method):
    H, Y, W, b, Xh, Yh = _problem(C=C)
    loss, grad = hypergradient(H, Y, W, b, Xh, Yh, lr, steps, method=method)
    ref_loss, ref_grad = hypergradient_autograd(H, Y, W, b, Xh, Yh, lr, steps)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    assert grad.abs().max() > 0


def test_hypergradient_is_a_real_gradient():
    """Finite differences along a random direction agree with the hypergradient."""
    H, Y, W, b, Xh, Yh = _problem(C=2)
    _, grad = hypergradient(H, Y, W, b, Xh, Yh, 0.5, 3)
    direction = torch.randn(
        H.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    eps = 1e-6
    plus, _ = hypergradient(H + eps * direction, Y, W, b, Xh, Yh, 0.5, 3)
    minus, _ = hypergradient(H - eps * direction, Y, W, b, Xh, Yh, 0.5, 3)
    assert (plus - minus) / (2 * eps) == pytest.approx(
        float((grad * direction).sum()), rel=1e-5
    )


def test_head_gradient_matches_autograd():
    H, Y, W, b, _, _ = _problem()
    loss, gW, gb = head_gradient(H, Y, W, b)
    Wr, br = W.clone().requires_grad_(), b.clone().requires_grad_()
    ref = torch.nn.functional.cross_entropy(H @ Wr.T + br, Y.argmax(1))
    ref.backward()
    assert float(loss) == pytest.approx(float(ref.detach()))
    torch.testing.assert_close(gW, Wr.grad)
    torch.testing.assert_close(gb, br.grad)


def test_select_hard_set_takes_highest_losses_per_class():
    X = torch.eye(4, dtype=torch.float64).repeat(3, 1)  # 12 rows
    y = torch.tensor([0, 1] * 6)
    W = torch.zeros(2, 4, dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64)
    W[1, 0] = 5.0  # rows with x0=1 and y=0 get a high loss
    idx, weights = select_hard_set(X @ W.T + b, y, hard_size=2, n_classes=2)
    assert weights is None  # per class: the plain mean, the paper's objective
    assert idx.shape == (4,)
    assert (y[idx] == torch.tensor([0, 0, 1, 1])).all()
    # class-0 rows with x0 = 1 are 0, 4 and 8: equal losses, ties go by row order
    assert idx[:2].tolist() == [0, 4]
    # hard_size above a class's size takes the whole class
    idx, _ = select_hard_set(X @ W.T + b, y, hard_size=100, n_classes=2)
    assert sorted(idx.tolist()) == list(range(12))
    # a float is a share of each class, rounded up
    idx, _ = select_hard_set(X @ W.T + b, y, hard_size=0.25, n_classes=2)
    assert (y[idx] == torch.tensor([0, 0, 1, 1])).all()


def test_select_hard_set_per_stratum_weighs_strata_equally():
    logits = torch.zeros(10, 2, dtype=torch.float64)
    logits[:, 1] = torch.arange(10, dtype=torch.float64)  # later rows: higher loss
    y = torch.zeros(10, dtype=torch.long)
    strata = torch.tensor([0] * 8 + [1] * 2)  # a large and a small group
    idx, weights = select_hard_set(logits, y, 0.5, 2, strata)
    # the hardest half of each stratum, hardest first
    assert idx.tolist() == [7, 6, 5, 4, 9]
    assert weights.dtype == logits.dtype
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    # each stratum weighs 1/2 whatever its size
    assert float(weights[:4].sum()) == pytest.approx(0.5)
    assert float(weights[4]) == pytest.approx(0.5)
    idx, weights = select_hard_set(logits, y, 3, 2, strata)
    assert idx.tolist() == [7, 6, 5, 9, 8]  # a small stratum gives all its rows


@pytest.mark.parametrize("method", ["primal", "gram"])
def test_weighted_hypergradient_matches_autograd(method):
    H, Y, W, b, Xh, Yh = _problem(C=3)
    w = torch.rand(Xh.shape[0], generator=torch.Generator().manual_seed(2)).double()
    w = w / w.sum()
    loss, grad = hypergradient(H, Y, W, b, Xh, Yh, 0.3, 4, method=method, weights=w)
    ref_loss, ref_grad = hypergradient_autograd(H, Y, W, b, Xh, Yh, 0.3, 4, weights=w)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-9, atol=1e-12)
    # uniform weights are the plain mean
    uniform = torch.full((Xh.shape[0],), 1.0 / Xh.shape[0], dtype=torch.float64)
    loss_u, grad_u = hypergradient(H, Y, W, b, Xh, Yh, 0.3, 4, weights=uniform)
    loss_m, grad_m = hypergradient(H, Y, W, b, Xh, Yh, 0.3, 4)
    assert loss_u == pytest.approx(loss_m, rel=1e-12)
    torch.testing.assert_close(grad_u, grad_m)


def test_adam_matches_torch_optim():
    p = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    q = p.clone().requires_grad_()
    ours = Adam([p], lr=0.1)
    ref = torch.optim.Adam([q], lr=0.1)
    for step in range(5):
        grad = torch.sin(p + step)
        ours.step([grad])
        q.grad = torch.sin(q.detach() + step)
        ref.step()
    torch.testing.assert_close(p, q.detach())


def test_clip_norm():
    g = torch.full((4,), 10.0)
    clip_norm_(g, 10.0)
    assert float(torch.linalg.vector_norm(g)) == pytest.approx(10.0, rel=1e-5)
    small = torch.full((4,), 0.1)
    clip_norm_(small, 10.0)
    np.testing.assert_allclose(small.numpy(), 0.1)
