"""The ``skhsfm benchmark`` and ``skhsfm speed`` commands, after argument parsing."""

import os
import platform
import sys
import time

from skhsfm._cli_common import CLIError, Reporter, check_device

__all__ = ["run_benchmark_command", "run_speed_command"]

OUTPUT_FILES = {
    "table": "results.md",
    "json": "results.json",
    "csv": "results.csv",
    "per_seed_csv": "results_per_seed.csv",
    "figure": "per_group_accuracy.png",
}


def _setup_torch(args):
    from skhsfm._torch import torch

    device = check_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    return device, torch.get_num_threads()


def _make_out(path):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"--out {path}: cannot create the output folder: {exc}")
    return path


def _make_source(args, settings, reporter):
    from skhsfm import _cli_data

    if settings.embedded:
        return _cli_data.EmbeddedDominoes(settings, reporter)
    spec = _cli_data.resolve_backbone(
        args.backbone, args.pretrained, args.weights, args.dataset
    )
    root = os.path.abspath(os.path.expanduser(args.root))
    if args.dataset == "dominoes":
        return _cli_data.DominoesArrays(root, spec, settings, reporter)
    return _cli_data.ImageDataset(args.dataset, root, spec, settings, reporter)


def _seed_text(seeds):
    return ", ".join(str(s) for s in seeds)


def _footnotes(has_head, wall, timings, notes, cached_seeds):
    start = (
        "the backbone's own last layer"
        if has_head
        else "a logistic regression on the training embeddings"
    )
    lines = [
        "worst-group acc.: the lowest test accuracy over the (class, attribute) "
        "groups; +- is the standard deviation over seeds; per-group columns are "
        "means over seeds.",
        "All methods fit on the same embeddings: support pool = train split, "
        f"hard pool = validation split. AFR and HSFM start from {start}.",
        "fit (s): wall time of fit (mean over seeds; the CPU may be shared).",
    ]
    stages = {}
    for entry in timings:
        for key, value in entry.items():
            if key != "seed":
                stages[key] = stages.get(key, 0.0) + value
    parts = [f"{key.replace('_', ' ')} {value:.1f} s" for key, value in stages.items()]
    lines.append(f"wall time: {wall:.1f} s ({', '.join(parts)})")
    if cached_seeds:
        lines.append(
            f"embeddings of seed(s) {_seed_text(cached_seeds)} were read from the "
            "cache (--no-cache recomputes them)."
        )
    for method, messages in notes.items():
        for message in messages:
            lines.append(f"warning during {method} fit: {message}")
    return lines


def run_benchmark_command(args, settings, argv):
    from skhsfm import __version__
    from skhsfm._cli_benchmark import run_benchmark, summarise
    from skhsfm._cli_report import (
        format_table,
        write_figure,
        write_json,
        write_per_seed_csv,
        write_summary_csv,
    )

    reporter = Reporter(quiet=args.quiet)
    settings.device, threads = _setup_torch(args)
    out = _make_out(args.out)
    tic = time.perf_counter()
    source = _make_source(args, settings, reporter)
    config = source.config()
    reporter.log(
        f"skhsfm benchmark: {config['dataset']}; backbone: {config['backbone']}; "
        f"methods: {' '.join(settings.methods)}; seeds: {_seed_text(settings.seeds)}; "
        f"device: {settings.device}, {threads} torch thread(s)"
    )
    run = run_benchmark(source, settings, reporter)
    records, timings, notes = run["records"], run["timings"], run["notes"]
    wall = time.perf_counter() - tic
    summary, groups = summarise(records, run["group_names"])
    n = len(settings.seeds)
    title = [
        f"skhsfm benchmark: {config['dataset']}",
        f"backbone: {config['backbone']}",
        f"test split, {n} seed{'s' if n > 1 else ''} ({_seed_text(settings.seeds)}); "
        "mean +- std over seeds",
    ]
    table = format_table(
        summary,
        groups,
        title,
        _footnotes(run["has_head"], wall, timings, notes, run["cached_seeds"]),
    )
    print(table, flush=True)

    paths = {key: os.path.join(out, name) for key, name in OUTPUT_FILES.items()}
    with open(paths["table"], "w", encoding="utf-8") as handle:
        handle.write(table + "\n")
    payload = {
        "skhsfm_version": __version__,
        "command": "skhsfm " + " ".join(argv),
        "config": {
            **config,
            "seeds": settings.seeds,
            "methods": settings.methods,
            "hsfm_preset": settings.preset,
            "hsfm_epochs": settings.hsfm_epochs,
            "afr_epochs": settings.afr_epochs,
            "dfr_models": settings.dfr_models,
            "device": str(settings.device),
            "torch_threads": threads,
            "python": platform.python_version(),
        },
        "groups": groups,
        "summary": summary,
        "per_seed": records,
        "timings": {"wall_seconds": wall, "per_seed": timings},
        "warnings": notes,
    }
    write_json(paths["json"], payload)
    write_summary_csv(paths["csv"], summary, groups)
    write_per_seed_csv(paths["per_seed_csv"], records, groups)
    figure = write_figure(paths["figure"], summary, groups, "\n".join(title))
    if figure is None:
        paths.pop("figure")
        reporter.log("no figure: matplotlib is not installed (pip install matplotlib)")
    if not args.quiet:
        print(f"\nwrote {', '.join(paths.values())}", flush=True)
    return 0


def run_speed_command(args, argv):
    from skhsfm import __version__
    from skhsfm._cli_report import write_json
    from skhsfm._cli_speed import format_speed_table, run_speed

    reporter = Reporter(quiet=args.quiet)
    device, threads = _setup_torch(args)
    out = _make_out(args.out)
    rows = run_speed(args.quick, device, reporter)
    scope = "quick: reduced shapes, 2 epochs" if args.quick else "paper shapes"
    title = (
        f"skhsfm speed ({scope}) | device {device}, {threads} torch thread(s), "
        f"{platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}"
    )
    table = format_speed_table(rows, title)
    print(table, flush=True)
    path = os.path.join(out, "speed.json")
    write_json(
        path,
        {
            "skhsfm_version": __version__,
            "command": "skhsfm " + " ".join(argv),
            "device": str(device),
            "torch_threads": threads,
            "quick": bool(args.quick),
            "rows": rows,
        },
    )
    if not args.quiet:
        print(f"\nwrote {path}", file=sys.stdout, flush=True)
    return 0
