"""Figures for :mod:`skhsfm.inspect`.

matplotlib is imported inside each function. Figures are plain
:class:`matplotlib.figure.Figure` objects (no pyplot), so building or saving one
never selects or changes a backend; show one in a notebook by leaving it as the
cell's value, or save it with ``path=`` / ``fig.savefig``.
"""

import numpy as np

_MATPLOTLIB_MISSING = (
    "{} needs matplotlib; install it with `pip install matplotlib` (or "
    "`pip install skhsfm[plot]`)."
)
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _new_figure(where, **kwargs):
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is installed in CI
        raise ImportError(_MATPLOTLIB_MISSING.format(where)) from exc
    return Figure(layout="constrained", **kwargs)


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _namer(names, what):
    """label -> display string, from a dict, a sequence indexed by label, or None."""
    if names is None:
        return lambda label: f"{what}={label}"
    if isinstance(names, dict):
        return lambda label: str(names.get(label, f"{what}={label}"))
    names = list(names)

    def name(label):
        try:
            return str(names[int(label)])
        except (IndexError, TypeError, ValueError):
            return f"{what}={label}"

    return name


def _colors(n):
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _positions(values):
    """Sorted unique values and the position of each element among them."""
    uniques, inverse = np.unique(values, return_inverse=True)
    return uniques, inverse


# ------------------------------------------------------------ training curves


def plot_training_curves(estimator, *, path=None):
    """Plot a fitted HSFM's per-epoch history.

    Left: the outer loss (hard-set loss of the head adapted on the edited
    support set, averaged over the epoch's meta-updates). Right: worst-group
    and mean accuracy of the head on the hard pool (worst-class accuracy when
    the hard pool had no groups). The selected epoch ``best_epoch_`` is
    marked.

    Parameters
    ----------
    estimator : HSFMClassifier
        A fitted classifier (with ``history_`` and ``best_epoch_``).
    path : str or path-like, default=None
        Where to save the figure (the format follows the extension).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    history = getattr(estimator, "history_", None)
    if history is None or not hasattr(estimator, "best_epoch_"):
        raise ValueError(
            "plot_training_curves needs a fitted HSFMClassifier (with history_ and "
            f"best_epoch_); got {type(estimator).__name__}. Call fit first."
        )
    epochs = np.asarray(history["epoch"])
    best = int(estimator.best_epoch_)
    fig = _new_figure("plot_training_curves", figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, history["outer_loss"], marker="o", ms=3, color="C3")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("outer loss")
    ax_loss.set_title("hard-set loss after inner adaptation")
    ax_acc.plot(
        epochs,
        history["worst_group_accuracy"],
        marker="o",
        ms=3,
        label="worst-group accuracy",
    )
    ax_acc.plot(
        epochs, history["mean_accuracy"], marker="o", ms=3, label="mean accuracy"
    )
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy on the hard pool")
    ax_acc.set_title("head on the hard pool")
    for ax in (ax_loss, ax_acc):
        ax.axvline(best, color="k", ls="--", lw=1, label=f"selected epoch ({best})")
        ax.grid(alpha=0.3)
    ax_acc.legend(loc="best", fontsize="small")
    return _finish(fig, path)


# -------------------------------------------------------------- retrieval


def _as_images(images, name):
    from skhsfm.embedding._images import as_image_sequence

    try:
        return as_image_sequence(images)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc


def _pixels(images, i):
    from skhsfm.embedding._images import to_pil_rgb

    return np.asarray(to_pil_rgb(images[i]))


def _default_examples(result, n_examples):
    """Up to ``n_examples`` support rows, alternating over classes, those whose
    neighbours' attribute changed first."""
    changed = result.attribute_changed
    if changed is None:
        changed = result.class_changed
    per_class = []
    for c in np.unique(result.labels):
        rows = np.flatnonzero(result.labels == c)
        per_class.append(list(rows[np.argsort(~changed[rows], kind="stable")]))
    picked = []
    while len(picked) < n_examples and any(per_class):
        for rows in per_class:
            if rows and len(picked) < n_examples:
                picked.append(rows.pop(0))
    return np.asarray(picked, dtype=np.intp)


def _neighbor_title(result, j, class_name, attribute_name):
    parts = []
    if result.gallery_y is not None:
        parts.append(class_name(result.gallery_y[j]))
    if result.gallery_attribute is not None:
        parts.append(attribute_name(result.gallery_attribute[j]))
    return "\n".join(parts)


def plot_retrieval(
    result,
    support_images,
    gallery_images,
    *,
    examples=None,
    n_examples=6,
    n_shown=1,
    class_names=None,
    attribute_names=None,
    path=None,
):
    """Show support images with their nearest gallery images before and after editing.

    One row per chosen support example: its own image, then the ``n_shown``
    nearest gallery images of its initial embedding, then those of its edited
    embedding, each titled with the gallery image's class and attribute.

    Parameters
    ----------
    result : EditRetrieval
        From :func:`~skhsfm.inspect.edit_retrieval`.
    support_images : sequence of images of length n_support
        The image of each support example, in support-set order, e.g.
        ``train_images[clf.support_indices_]``. Arrays ``(n, H, W[, C])``,
        lists of arrays, PIL images or file paths.
    gallery_images : sequence of images
        The gallery's images, in the order of ``gallery_X``.
    examples : array-like of int, default=None
        Support rows to show. None takes ``n_examples`` rows alternating over
        classes, those whose neighbours' attribute changed first.
    n_examples : int, default=6
        Rows shown when ``examples`` is None.
    n_shown : int, default=1
        Neighbours shown per side (at most ``result.n_neighbors``).
    class_names, attribute_names : dict or sequence, default=None
        Display names of the class and attribute labels (a dict keyed by label,
        or a sequence indexed by integer label).
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    n_support = result.labels.shape[0]
    support = _as_images(support_images, "support_images")
    gallery = _as_images(gallery_images, "gallery_images")
    if len(support) != n_support:
        raise ValueError(
            f"support_images has {len(support)} images but the support set has "
            f"{n_support}; pass the support set's images, e.g. "
            "train_images[clf.support_indices_]."
        )
    needed = int(max(result.indices_before.max(), result.indices_after.max())) + 1
    if len(gallery) < needed:
        raise ValueError(
            f"gallery_images has {len(gallery)} images but the retrieval refers to "
            f"gallery row {needed - 1}; pass the images of gallery_X, in order."
        )
    if not 1 <= n_shown <= result.n_neighbors:
        raise ValueError(
            f"n_shown must be between 1 and n_neighbors={result.n_neighbors}; got "
            f"{n_shown}."
        )
    if examples is None:
        examples = _default_examples(result, n_examples)
    examples = np.asarray(examples, dtype=np.intp).ravel()
    if examples.size == 0 or examples.min() < 0 or examples.max() >= n_support:
        raise ValueError(
            f"examples must be support rows in [0, {n_support}); got "
            f"{examples.tolist()[:10]}."
        )
    class_name = _namer(class_names, "y")
    attribute_name = _namer(attribute_names, "a")

    n_cols = 1 + 2 * n_shown
    fig = _new_figure(
        "plot_retrieval", figsize=(1.7 * n_cols + 0.4, 1.95 * examples.size + 0.3)
    )
    axes = np.atleast_2d(fig.subplots(examples.size, n_cols, squeeze=False))
    for r, i in enumerate(examples):
        own = class_name(result.labels[i])
        if result.support_attribute is not None:
            own += f"\n{attribute_name(result.support_attribute[i])}"
        cells = [(_pixels(support, i), f"support #{i}\n{own}")]
        for side, indices in (
            ("before", result.indices_before),
            ("after", result.indices_after),
        ):
            for k in range(n_shown):
                j = indices[i, k]
                title = _neighbor_title(result, j, class_name, attribute_name)
                cells.append((_pixels(gallery, j), title))
        for c, (pixels, title) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    headers = ["source"] + [f"before, #{k + 1}" for k in range(n_shown)]
    headers += [f"after, #{k + 1}" for k in range(n_shown)]
    for c, header in enumerate(headers):
        axes[0, c].set_title(
            f"{header}\n{axes[0, c].get_title()}", fontsize=8, fontweight="normal"
        )
    summary = []
    if result.attribute_change_fraction is not None:
        summary.append(f"attribute changed {result.attribute_change_fraction:.0%}")
    if result.class_change_fraction is not None:
        summary.append(f"class changed {result.class_change_fraction:.0%}")
    fig.suptitle(
        f"Nearest gallery images ({result.metric}) of initial vs edited support\n"
        f"embeddings. All {n_support} support examples, {result.n_neighbors}-NN "
        "majority:\n" + ", ".join(summary),
        fontsize=9,
    )
    return _finish(fig, path)


# ----------------------------------------------------------- prompt scores


def plot_prompt_scores(result, *, class_names=None, path=None):
    """Bar chart of zero-shot prompt probabilities before and after editing.

    One panel per class: for each prompt, the mean probability over the class's
    support examples before (light) and after (dark) editing, with each
    example's value as a dot.

    Parameters
    ----------
    result : PromptScores
        From :func:`~skhsfm.inspect.prompt_scores`.
    class_names : dict or sequence, default=None
        Display names of the class labels.
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    classes = result.classes
    n_prompts = len(result.prompt_names)
    n_cols = min(len(classes), 4)
    n_rows = -(-len(classes) // n_cols)
    width = max(3.2, 0.9 * n_prompts + 1.2)
    fig = _new_figure(
        "plot_prompt_scores", figsize=(width * n_cols, 3.4 * n_rows + 0.3)
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    class_name = _namer(class_names, "class")
    x = np.arange(n_prompts)
    jitter = np.random.RandomState(0)
    for k, c in enumerate(classes):
        ax = axes[k]
        mask = result.labels == c
        for offset, probs, mean, label, alpha in (
            (-0.2, result.probabilities_before, result.mean_before, "before", 0.45),
            (0.2, result.probabilities_after, result.mean_after, "after", 0.9),
        ):
            ax.bar(
                x + offset, mean[k], width=0.38, color="C0", alpha=alpha, label=label
            )
            points = probs[mask]
            spread = jitter.uniform(-0.08, 0.08, size=points.shape)
            ax.scatter(
                (x + offset)[None, :] + spread,
                points,
                s=7,
                color="k",
                alpha=0.5,
                linewidths=0,
            )
        ax.set_xticks(x)
        ax.set_xticklabels(result.prompt_names, rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("zero-shot probability")
        changed = result.by_class[c.item() if hasattr(c, "item") else c]
        ax.set_title(
            f"{class_name(c)} (n={changed['n']}); top prompt changed "
            f"{changed['top_change_fraction']:.0%}",
            fontsize=9,
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small")
    for ax in axes[len(classes) :]:
        ax.set_visible(False)
    fig.suptitle(
        "CLIP prompt probabilities of support embeddings, before vs after "
        f"editing\n(softmax of {result.temperature:g} x cosine)",
        fontsize=10,
    )
    return _finish(fig, path)


# -------------------------------------------------------------- projection


def plot_edit_projection(
    estimator,
    X,
    *,
    y=None,
    attribute=None,
    support_attribute=None,
    class_names=None,
    attribute_names=None,
    limits="auto",
    path=None,
):
    """2-D PCA of the support set, arrows to its edited points, and the hard set.

    Colour is the class, marker the attribute (circles when unknown). Filled
    markers with a black edge are initial support embeddings, hollow markers
    their edited versions (an arrow joins each pair), small faint markers the
    hard set of the selected epoch.

    Parameters
    ----------
    estimator : HSFMClassifier
        A fitted classifier.
    X : array-like of shape (n_samples, n_features)
        Where the hard pool came from: ``X_val`` when the classifier was fit
        with ``X_val``, else the ``X`` passed to ``fit``. See
        :func:`~skhsfm.inspect.edit_projection`.
    y, attribute : array-like of shape (n_samples,), default=None
        Class and attribute of the rows of ``X``.
    support_attribute : array-like of shape (n_support,), default=None
        Attribute of each support example (taken from ``attribute`` when ``X``
        is the ``X`` passed to fit).
    class_names, attribute_names : dict or sequence, default=None
        Display names for the legend.
    limits : {"auto", "all", "data"}, default="auto"
        Axis limits. ``"all"`` shows every point; ``"data"`` frames the initial
        support and the hard set, so edits that go far out leave the frame (the
        title counts them); ``"auto"`` is ``"data"`` when some edited point lies
        more than twice the data's extent beyond it, else ``"all"``.
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    from skhsfm.inspect import edit_projection

    if limits not in ("auto", "all", "data"):
        raise ValueError(f"limits must be 'auto', 'all' or 'data'; got {limits!r}.")
    proj = edit_projection(
        estimator, X, y=y, attribute=attribute, support_attribute=support_attribute
    )
    labels = [proj.support_labels]
    if proj.hard_labels is not None:
        labels.append(proj.hard_labels)
    class_values = np.unique(np.concatenate(labels))
    attrs = [a for a in (proj.support_attribute, proj.hard_attribute) if a is not None]
    attr_values = np.unique(np.concatenate(attrs)) if attrs else np.array([])
    colors = _colors(class_values.shape[0])

    def color_of(values):
        return [colors[k] for k in np.searchsorted(class_values, values)]

    def marker_groups(attr_of_points, n):
        if attr_of_points is None:
            return [("o", np.ones(n, dtype=bool))]
        index = np.searchsorted(attr_values, attr_of_points)
        return [
            (_MARKERS[k % len(_MARKERS)], index == k)
            for k in range(attr_values.shape[0])
        ]

    fig = _new_figure("plot_edit_projection", figsize=(7.5, 6.2))
    ax = fig.subplots()
    # hard set, faint, coloured by class when known
    hard_colors = (
        color_of(proj.hard_labels)
        if proj.hard_labels is not None
        else ["0.6"] * proj.hard.shape[0]
    )
    hard_colors = np.array(hard_colors, dtype=object)
    for marker, mask in marker_groups(proj.hard_attribute, proj.hard.shape[0]):
        if mask.any():
            ax.scatter(
                proj.hard[mask, 0],
                proj.hard[mask, 1],
                s=10,
                marker=marker,
                c=list(hard_colors[mask]),
                alpha=0.3,
                linewidths=0,
            )
    support_colors = np.array(color_of(proj.support_labels), dtype=object)
    start, end = proj.support_init, proj.support_edited
    ax.quiver(
        start[:, 0],
        start[:, 1],
        end[:, 0] - start[:, 0],
        end[:, 1] - start[:, 1],
        angles="xy",
        scale_units="xy",
        scale=1,
        color=list(support_colors),
        width=0.003,
        alpha=0.7,
    )
    for marker, mask in marker_groups(proj.support_attribute, start.shape[0]):
        if not mask.any():
            continue
        ax.scatter(
            start[mask, 0],
            start[mask, 1],
            s=55,
            marker=marker,
            c=list(support_colors[mask]),
            edgecolors="k",
            linewidths=0.8,
            zorder=3,
        )
        ax.scatter(
            end[mask, 0],
            end[mask, 1],
            s=55,
            marker=marker,
            facecolors="none",
            edgecolors=list(support_colors[mask]),
            linewidths=1.4,
            zorder=3,
        )
    class_name = _namer(class_names, "y")
    attribute_name = _namer(attribute_names, "a")
    handles = [
        Line2D([], [], ls="", marker="s", ms=8, color=colors[k], label=class_name(c))
        for k, c in enumerate(class_values)
    ]
    handles += [
        Line2D(
            [],
            [],
            ls="",
            marker=_MARKERS[k % len(_MARKERS)],
            ms=7,
            color="0.3",
            label=attribute_name(a),
        )
        for k, a in enumerate(attr_values)
    ]
    handles += [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=7,
            mfc="0.5",
            mec="k",
            label="support, initial",
        ),
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            ms=7,
            mfc="none",
            mec="0.3",
            label="support, edited",
        ),
        Line2D(
            [], [], ls="", marker="o", ms=4, color="0.5", alpha=0.4, label="hard set"
        ),
    ]
    ax.legend(handles=handles, fontsize="small", loc="best", framealpha=0.8)
    ratio = proj.explained_variance_ratio
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%} of variance)")
    title = (
        f"Support edits and hard set (epoch {getattr(estimator, 'best_epoch_', '?')}), "
        "PCA of initial support + hard set"
    )
    outside = _frame_data(ax, proj, limits)
    if outside:
        title += (
            f"\n{outside} edited points lie outside the frame; limits='all' shows them"
        )
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def _frame_data(ax, proj, limits):
    """Frame the data when asked (or when edits go far out); count the edited
    points left outside."""
    data = np.vstack([proj.support_init, proj.hard])
    lo, hi = data.min(axis=0), data.max(axis=0)
    span = np.maximum(hi - lo, 1e-12)
    edited = proj.support_edited
    if limits == "auto":
        far = (edited.max(axis=0) - hi > 2 * span) | (
            lo - edited.min(axis=0) > 2 * span
        )
        limits = "data" if far.any() else "all"
    if limits == "all":
        return 0
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    inside = np.all((edited >= lo) & (edited <= hi), axis=1)
    return int((~inside).sum())
