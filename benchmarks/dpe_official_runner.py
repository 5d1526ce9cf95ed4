"""Run the official DPE package (``dpe`` 0.2.0 from PyPI) for ``bench_dpe.py``.

Runs in the separate environment that has ``dpe`` installed (not skhsfm's);
``bench_dpe.py`` starts it as a subprocess. Two commands:

``fit JOB``
    ``JOB/job.json`` holds the ``DPE(...)`` arguments (``data_dir`` holds
    ``feats_val.npy``, ``feats_test.npy`` and a metadata CSV). Fits, predicts
    the test split, and writes ``JOB/result.npz``: the test probabilities,
    the ensemble (prototypes, distance scales) and the seconds of each phase.
    With ``"fast_eval": true`` in the job, the official per-epoch validation
    (all of ``eval_metrics`` through a data loader) is replaced by
    :func:`fast_evaluate`, which gives the same worst-group accuracy, so the
    same fit, in a fraction of the time (for accuracy runs; never timed).

``member OUT``
    Fidelity of one member's training: trains one IsoMax+ member with the
    official ``_train_prototypes`` and with skhsfm's core from the same start,
    the same batches and the same earlier members, and writes the two
    results to ``OUT/member.npz``. Needs skhsfm importable (``PYTHONPATH``).
"""

import json
import os
import sys
import time

import numpy as np
import torch


def fast_evaluate(model, eval_loader, device="cuda"):
    """What the official ``_evaluate`` returns that training reads (the
    validation worst-group accuracy), in one forward pass.

    The same value: the same head on the same rows (the distances are
    computed row by row, so batching does not change them), hits counted per
    group. It draws the one number from torch's global generator that
    iterating the official data loader draws, so the fit after it is the
    same too.
    """
    torch.empty((), dtype=torch.int64).random_()  # DataLoader.__iter__'s seed
    ds = eval_loader.dataset
    feats = torch.tensor(ds.feats[ds.idx], dtype=torch.float)
    model.eval()
    with torch.no_grad():
        pred = model(feats).softmax(1).argmax(1).numpy()
    y, g = np.asarray(ds.y), np.asarray(ds.g)
    worst = min(np.mean(pred[g == k] == y[g == k]) for k in np.unique(g))
    return {"min_group": {"accuracy": worst}}


def fit(job):
    import dpe.core
    from dpe import DPE

    with open(os.path.join(job, "job.json")) as f:
        args = json.load(f)
    if args.pop("fast_eval", False):
        dpe.core._evaluate = fast_evaluate
    tic = time.perf_counter()
    model = DPE(**args)  # loads the features, seeds the global generators
    loaded = time.perf_counter()
    cpu = time.process_time()
    model.fit()
    fit_cpu = time.process_time() - cpu
    fitted = time.perf_counter()
    proba = model.predict_proba(target="test").numpy()
    predicted = time.perf_counter()
    prototypes = np.stack([m[0][:, 0].numpy() for m in model.ensemble])
    scales = np.concatenate([m[1].numpy() for m in model.ensemble])
    np.savez(
        os.path.join(job, "result.npz"),
        proba_test=proba,
        prototypes=prototypes,
        scales=scales,
        load_seconds=loaded - tic,
        fit_seconds=fitted - loaded,
        fit_cpu_seconds=fit_cpu,
        predict_seconds=predicted - fitted,
    )


class _Batches:
    """Fixed batches in the layout of the official data loaders: epoch ``e``
    (the ``e``-th pass) yields the batches ``order[e]``."""

    def __init__(self, X, y, order):
        self.X, self.y, self.order, self.epoch = X, y, order, 0

    def __len__(self):
        return self.order.shape[1]

    def __iter__(self):
        for rows in self.order[self.epoch]:
            yield rows, 0, self.y[rows], 0, self.X[rows]
        self.epoch += 1


class _Split:
    """What the official ``_evaluate`` reads from a loader's dataset."""

    def __init__(self, y, a, g):
        self.y, self._a, self.g = list(y), list(a), list(g)


class _Eval:
    def __init__(self, X, y, a, g):
        self.dataset = _Split(y, a, g)
        self.X = X

    def __iter__(self):
        for start in range(0, self.X.shape[0], 256):
            yield 0, 0, 0, 0, self.X[start : start + 256]


def member(out, n=600, d=32, n_classes=3, n_previous=2, epochs=5, seed=0):
    """One member trained by both implementations from the same start."""
    from dpe.core import _train_prototypes
    from dpe.isomaxplus import IsoMaxPlusLossFirstPart

    from skhsfm.baselines._dpe_core import (
        DPESettings,
        _batch_order,
        _device_data,
        _train_member,
        unit_rows,
    )

    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    a = rng.randint(0, 2, n)
    X = rng.normal(size=(n, d)) + 1.5 * np.eye(d)[y] + 2.0 * np.eye(d)[n_classes + a]
    X_unit = torch.tensor(unit_rows(X), dtype=torch.float32)
    y_t = torch.tensor(y)
    groups = y * 2 + a
    P0 = torch.tensor(rng.normal(0, 1e-2, (n_classes, d)), dtype=torch.float32)
    previous = torch.tensor(rng.normal(0, 0.05, (n_classes, n_previous, d)))
    previous = previous.float()
    order = torch.tensor(_batch_order(np.arange(n), 128, epochs, rng))
    settings = DPESettings(n_epochs=epochs, batch_size=128)
    weight = 5e4 / (1 + 0.05 * (n_previous - 1))

    head = IsoMaxPlusLossFirstPart(d, n_classes)
    head.prototypes.data.copy_(P0)
    official = _train_prototypes(
        _Batches(X_unit, y_t, order),
        _Eval(X_unit, y, a, groups),
        torch.nn.Sequential(torch.nn.Identity(), head),
        prototype_ensemble=[(previous[:, j : j + 1], None) for j in range(n_previous)],
        epochs=epochs,
        cov_reg=weight,
        device="cpu",
    )
    strata = np.unique(groups, return_inverse=True)[1]
    data = _device_data(X_unit.numpy(), y, strata, n_classes, "cpu")
    with torch.no_grad():
        (P, s, epoch, _), _ = _train_member(data, order, P0, previous, weight, settings)
    np.savez(
        os.path.join(out, "member.npz"),
        official_prototypes=official[0][:, 0].numpy(),
        official_scale=official[1].numpy(),
        ours_prototypes=P.numpy(),
        ours_scale=s.numpy(),
        ours_epoch=int(epoch),
    )


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("DPE_THREADS", torch.get_num_threads())))
    {"fit": fit, "member": member}[sys.argv[1]](sys.argv[2])
