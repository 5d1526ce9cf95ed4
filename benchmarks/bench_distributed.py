"""Embedding throughput: one process vs Dask vs Ray, with 1 and 2 workers.

Embeds ``--n`` random PNG files (96x96, decoded and preprocessed to 224x224 as
a real image folder would be) with a random-weight torchvision resnet18 on the
CPU, every worker with one torch thread:

- ``local``: ``BackboneEmbedder.transform`` in this process, torch limited to
  1 or 2 threads;
- ``dask``: :func:`skhsfm.distributed.embed_dask` on a
  ``LocalCluster(n_workers=k, threads_per_worker=1)``;
- ``ray``: :func:`skhsfm.distributed.embed_ray` with ``k`` actors after
  ``ray.init(num_cpus=k)``.

Printed per row: the engine's start-up (cluster or ``ray.init``), the first
run (workers import torch and load the model), a second run (Dask workers keep
their model; Ray starts a new actor pool per dataset) and the images per
second of the second run. Nothing is downloaded.

Run: ``python benchmarks/bench_distributed.py [--n 256] [--chunk 32]
[--backends local dask ray] [--workers 1 2]``.
"""

import argparse
import os
import tempfile
import time

import numpy as np

# every process this script starts runs torch with one thread per worker
os.environ.setdefault("OMP_NUM_THREADS", "1")


def make_images(folder, n, seed=0):
    from PIL import Image

    rng = np.random.RandomState(seed)
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"img{i:05d}.png")
        Image.fromarray(rng.randint(0, 256, (96, 96, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def embedder(batch_size):
    from skhsfm.embedding import BackboneEmbedder

    return BackboneEmbedder(
        "torchvision",
        model_name="resnet18",
        pretrained=None,
        device="cpu",
        batch_size=batch_size,
        show_progress_bar=False,
    )


def timed(fn):
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def run_local(paths, workers, chunk):
    import torch

    torch.set_num_threads(workers)
    emb = embedder(chunk)
    first, t1 = timed(lambda: emb.transform(paths))
    _, t2 = timed(lambda: emb.transform(paths))
    return 0.0, t1, t2, first


def run_dask(paths, workers, chunk):
    from dask.distributed import Client, LocalCluster

    from skhsfm.distributed import embed_dask

    def start():
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, dashboard_address=None
        )
        return cluster, Client(cluster)

    (cluster, client), startup = timed(start)
    try:
        emb = embedder(chunk)
        first, t1 = timed(lambda: embed_dask(emb, paths, chunk_size=chunk).compute())
        _, t2 = timed(lambda: embed_dask(emb, paths, chunk_size=chunk).compute())
    finally:
        client.close()
        cluster.close()
    return startup, t1, t2, first


def run_ray(paths, workers, chunk):
    import ray

    from skhsfm.distributed import embed_ray

    def start():
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
        ray.data.DataContext.get_current().enable_progress_bars = False

    _, startup = timed(start)
    try:
        emb = embedder(chunk)

        def once():
            ds = embed_ray(emb, paths, batch_size=chunk, num_actors=workers)
            batches = ds.iter_batches(batch_format="numpy", batch_size=None)
            return np.concatenate([b["embedding"] for b in batches])

        first, t1 = timed(once)
        _, t2 = timed(once)
    finally:
        ray.shutdown()
    return startup, t1, t2, first


RUNNERS = {"local": run_local, "dask": run_dask, "ray": run_ray}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="images")
    parser.add_argument("--chunk", type=int, default=32, help="images per task")
    parser.add_argument(
        "--backends", nargs="+", default=list(RUNNERS), choices=list(RUNNERS)
    )
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        paths = make_images(folder, args.n)
        reference = None
        print(
            f"{args.n} PNG images (96x96 -> 224x224), torchvision resnet18, CPU, "
            f"{args.chunk} images per task/batch, 1 torch thread per worker; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
        )
        print(
            f"| {'backend':<7} | workers | start-up s | first run s | "
            f"second run s | images/s |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for backend in args.backends:
            for workers in args.workers:
                startup, t1, t2, out = RUNNERS[backend](paths, workers, args.chunk)
                if reference is None:
                    reference = out
                np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-5)
                print(
                    f"| {backend:<7} | {workers:>7} | {startup:>10.1f} | "
                    f"{t1:>11.1f} | {t2:>12.1f} | {args.n / t2:>8.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
