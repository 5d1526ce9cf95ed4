"""Fit-time benchmark of HSFMClassifier against a straightforward autograd version.

Waterbirds-shaped inputs (d=2048, 4795-example support pool, 1199-example hard
pool, ``preset="waterbirds"``) and CelebA-shaped inputs (d=2048, 19867-example
hard pool, ``preset="celeba"``), CPU. The straightforward version below runs the
same steps with ``torch.autograd.grad(create_graph=True)`` through the unrolled
inner loop, ``torch.nn.utils.clip_grad_norm_`` and ``torch.optim.Adam``; both
start from the same initial head and support set, so the meta-loops are compared
like for like (the initial logistic regression is timed separately).

Run: ``python benchmarks/bench_hsfm_fit.py [--repeats 3] [--shapes waterbirds celeba]
[--threads 1]``. Note that ``HSFMClassifier`` runs small support sets
single-threaded on the CPU whatever the setting (see ``skhsfm/_meta.py``); the
reference uses the process's setting, so compare at ``--threads 1`` too.
"""

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from skhsfm import PRESETS, HSFMClassifier, worst_group_accuracy
from skhsfm._linear import to_softmax_head
from skhsfm._meta import hypergradient_autograd

SHAPES = {
    # name: (support pool, hard pool, d, support pool size used for this benchmark)
    "waterbirds": (4795, 1199, 2048),
    "celeba": (20000, 19867, 2048),
}


def make_data(n_support, n_hard, d, seed=0):
    """ReLU-like features with a core and a spurious direction (4 groups)."""
    rng = np.random.RandomState(seed)

    def split(n, corr):
        y = rng.randint(0, 2, n)
        a = np.where(rng.rand(n) < corr, y, 1 - y)
        X = rng.normal(size=(n, d)).astype(np.float32)
        X[:, :16] += 1.0 * (2 * y - 1)[:, None]
        X[:, 16:32] += 2.0 * (2 * a - 1)[:, None]
        return np.maximum(X, 0), y, 2 * y + a

    return split(n_support, 0.95), split(n_hard, 0.5)


def straightforward_loop(H0, ys, W0, b0, Xh, yh, groups_h, p, max_grad_norm=10.0):
    """The paper's epoch loop written the obvious way with autograd."""
    n_classes = W0.shape[0]
    H = torch.tensor(H0, dtype=torch.float32, requires_grad=True)
    W = torch.tensor(W0, dtype=torch.float32, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float32, requires_grad=True)
    ys_t = torch.as_tensor(ys)
    Y = F.one_hot(ys_t, n_classes).float()
    Xh_t = torch.tensor(Xh, dtype=torch.float32)
    yh_t = torch.as_tensor(yh)
    opt_H = torch.optim.Adam([H], lr=p["outer_lr"])
    opt_head = torch.optim.Adam([W, b], lr=p["inner_lr"])
    best = (-1.0, None)
    for _ in range(p["n_epochs"]):
        with torch.no_grad():
            losses = F.cross_entropy(Xh_t @ W.T + b, yh_t, reduction="none")
        idx = []
        for k in range(n_classes):
            members = torch.nonzero(yh_t == k).squeeze(1)
            m = min(p["hard_size"], members.numel())
            idx.append(members[torch.topk(losses[members], m).indices])
        idx = torch.cat(idx)
        Xs, Ys = Xh_t[idx], F.one_hot(yh_t[idx], n_classes).float()
        for _ in range(p["outer_steps"]):
            opt_H.zero_grad()
            _, g = hypergradient_autograd(
                H, Y, W, b, Xs, Ys, p["inner_lr"], p["inner_steps"]
            )
            H.grad = g
            torch.nn.utils.clip_grad_norm_([H], max_grad_norm)
            opt_H.step()
        for _ in range(p["inner_steps"]):
            opt_head.zero_grad()
            F.cross_entropy(H.detach() @ W.T + b, ys_t).backward()
            opt_head.step()
        with torch.no_grad():
            pred = (Xh_t @ W.T + b).argmax(1).numpy()
        score = worst_group_accuracy(yh, pred, groups=groups_h)
        if score >= best[0]:
            best = (score, (W.detach().numpy().copy(), b.detach().numpy().copy()))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=SHAPES)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads for the whole run (both implementations)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU")
    for name in args.shapes:
        n_support, n_hard, d = SHAPES[name]
        (X, y, g), (Xh, yh, gh) = make_data(n_support, n_hard, d)
        t = time.perf_counter()
        init = HSFMClassifier(preset=name, n_epochs=1, random_state=0).fit(
            X, y, g, X_val=Xh, y_val=yh, groups_val=gh
        )
        lr_seconds = time.perf_counter() - t
        kwargs = dict(
            preset=name,
            init_coef=init.init_coef_,
            init_intercept=init.init_intercept_,
            random_state=0,
        )
        ours, ref = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            clf = HSFMClassifier(**kwargs).fit(
                X, y, g, X_val=Xh, y_val=yh, groups_val=gh
            )
            ours.append(time.perf_counter() - t)
            # the reference gets exactly the same start: support set, head, scale
            s = clf.scale_
            W0, b0 = to_softmax_head(init.init_coef_ / s, init.init_intercept_, 2)
            t = time.perf_counter()
            score, _ = straightforward_loop(
                clf.support_init_ * s,
                np.searchsorted(clf.classes_, clf.support_labels_),
                W0,
                b0,
                Xh * s,
                yh,
                gh,
                PRESETS[name],
            )
            ref.append(time.perf_counter() - t)
        mo, mr = statistics.median(ours), statistics.median(ref)
        print(
            f"{name:10s} support {n_support} hard {n_hard} d {d}: "
            f"HSFMClassifier.fit median {mo:.2f}s (meta-loop, initial head given) | "
            f"straightforward autograd {mr:.2f}s | speed-up {mr / mo:.2f}x | "
            f"initial logistic regression {lr_seconds:.2f}s | hard-pool WGA ours "
            f"{clf.best_score_:.3f} vs reference {score:.3f}"
        )


if __name__ == "__main__":
    main()
