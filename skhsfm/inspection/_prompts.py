"""CLIP prompt scores: zero-shot attribute probabilities before and after editing."""

from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from skhsfm._sklearn_compat import Interval, validate_params
from skhsfm._utils.table import format_table
from skhsfm._validation import check_X
from skhsfm.inspection._common import check_result, support_arrays
from skhsfm.inspection._plotting import finish, namer, new_figure

__all__ = ["PromptScores", "plot_prompt_scores", "prompt_scores"]


@dataclass(eq=False, repr=False)
class PromptScores:
    """Zero-shot prompt probabilities before and after editing; see
    :func:`prompt_scores`.

    Prints as a per-class table; :meth:`plot` draws the bar chart.

    Parameters
    ----------
    prompt_names : list of str
        One name per scored prompt (or prompt group).
    labels : ndarray of shape (n_support,)
        Class of each support example.
    probabilities_before, probabilities_after : ndarray of shape \
            (n_support, n_prompts)
        ``softmax(temperature * cosine(embedding, text))`` of each initial /
        edited support embedding over the prompts.
    temperature : float

    Attributes
    ----------
    classes : ndarray of shape (n_classes,)
        Class labels present in the support set.
    mean_before, mean_after : ndarray of shape (n_classes, n_prompts)
        The probabilities' means per class.
    top_changed : ndarray of bool of shape (n_support,)
        Whether the most probable prompt changed after editing.
    top_change_fraction : float
        Share of support examples whose most probable prompt changed.
    by_class : dict
        ``{class: {"n", "top_change_fraction"}}``.
    """

    prompt_names: list
    labels: np.ndarray
    probabilities_before: np.ndarray
    probabilities_after: np.ndarray
    temperature: float
    classes: np.ndarray = field(init=False)
    mean_before: np.ndarray = field(init=False)
    mean_after: np.ndarray = field(init=False)
    top_changed: np.ndarray = field(init=False)
    top_change_fraction: float = field(init=False)
    by_class: dict = field(init=False)

    def __post_init__(self):
        self.classes = np.unique(self.labels)
        masks = [self.labels == c for c in self.classes]
        before, after = self.probabilities_before, self.probabilities_after
        self.mean_before = np.vstack([before[m].mean(axis=0) for m in masks])
        self.mean_after = np.vstack([after[m].mean(axis=0) for m in masks])
        self.top_changed = before.argmax(axis=1) != after.argmax(axis=1)
        self.top_change_fraction = float(self.top_changed.mean())
        self.by_class = {
            c: {
                "n": int(m.sum()),
                "top_change_fraction": float(self.top_changed[m].mean()),
            }
            for c, m in zip(self.classes.tolist(), masks)
        }

    def __repr__(self):
        header = ["class", "prompt", "before", "after", "change"]
        rows = []
        for k, c in enumerate(self.classes.tolist()):
            for j, name in enumerate(self.prompt_names):
                before, after = self.mean_before[k, j], self.mean_after[k, j]
                label = f"{c} (n={self.by_class[c]['n']})" if j == 0 else ""
                rows.append(
                    [label, name, float(before), float(after), float(after - before)]
                )
        title = (
            f"PromptScores: mean zero-shot probability per class (temperature "
            f"{self.temperature:g}); top prompt changed for "
            f"{self.top_change_fraction:.3f} of support examples"
        )
        return format_table(header, rows, left=2, title=title)

    def plot(self, **kwargs):
        """The figure of :func:`plot_prompt_scores` for this result.

        Parameters
        ----------
        **kwargs
            ``class_names``, ``path``; see :func:`plot_prompt_scores`.

        Returns
        -------
        fig : matplotlib.figure.Figure
        """
        return plot_prompt_scores(self, **kwargs)


def _prompt_groups(prompts):
    """``(names, groups)``: one list of prompt strings per scored name."""
    if isinstance(prompts, dict):
        names = [str(name) for name in prompts]
        groups = [[p] if isinstance(p, str) else list(p) for p in prompts.values()]
    else:
        groups = [[p] for p in prompts]
        names = [p for (p,) in groups]
    bad = [p for group in groups for p in group if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must be strings; got {type(bad[0]).__name__}.")
    if len(groups) < 2 or any(len(group) == 0 for group in groups):
        raise ValueError(
            f"prompts must give at least two non-empty prompts (one per attribute "
            f"value); got {len(groups)}."
        )
    return names, groups


def _unit_rows(A):
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    return A / np.maximum(norms, 1e-12)


def _softmax(logits):
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _text_embeddings(flat, embedder, text_embeddings, d):
    """One row per prompt string, from the embedder or as given; checked."""
    if (embedder is None) == (text_embeddings is None):
        raise ValueError(
            "pass exactly one of embedder (a CLIP BackboneEmbedder) and "
            "text_embeddings."
        )
    if embedder is not None:
        if not hasattr(embedder, "encode_text"):
            raise ValueError(
                "embedder must be a CLIP BackboneEmbedder (with encode_text); got "
                f"{type(embedder).__name__}."
            )
        text = np.asarray(embedder.encode_text(flat), dtype=np.float64)
    else:
        text = check_X(text_embeddings, "text_embeddings")
    if text.shape[0] != len(flat):
        raise ValueError(
            f"text_embeddings has {text.shape[0]} rows for {len(flat)} prompts; pass "
            "one row per prompt string."
        )
    if text.shape[1] != d:
        raise ValueError(
            f"the text embeddings have {text.shape[1]} features but the support "
            f"embeddings have {d}; the classifier must be fit on the CLIP image "
            "embeddings of the same model."
        )
    return text


@validate_params(
    {
        "estimator": "no_validation",
        "prompts": [list, tuple, dict],
        "embedder": "no_validation",
        "text_embeddings": ["array-like", None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
    },
    prefer_skip_nested_validation=True,
)
def prompt_scores(
    estimator, prompts, *, embedder=None, text_embeddings=None, temperature=100.0
):
    """Zero-shot CLIP probabilities of attribute prompts, before and after editing.

    Each initial and edited support embedding is scored against text prompts
    describing the values of the spurious attribute (e.g. ``"a photo with a
    water background"`` / ``"a photo with a land background"``): the
    probabilities are ``softmax(temperature * cosine(image, text))`` over the
    prompts, the CLIP zero-shot convention. Edits along the attribute shift
    the probability mass from one prompt to the other.

    Parameters
    ----------
    estimator : HSFMClassifier
        A classifier fit on **CLIP image embeddings** of the same model as
        ``embedder`` (the scores mean nothing in any other space); or any
        object with ``support_init_``, ``support_edited_`` and
        ``support_labels_``.
    prompts : list of str or dict
        One prompt per attribute value, or a dict ``{name: prompt or list of
        prompts}``; several prompts for one name are averaged after
        normalization (CLIP prompt ensembling).
    embedder : BackboneEmbedder, default=None
        A CLIP embedder (``backbone="open_clip"``) whose ``encode_text`` turns
        the prompts into text embeddings.
    text_embeddings : array-like of shape (n_prompt_strings, n_features), \
            default=None
        Precomputed text embeddings, one row per prompt string in the order
        given (dict values flattened); instead of ``embedder``.
    temperature : float, default=100.0
        Multiplies the cosines before the softmax (CLIP's learned logit scale
        is 100).

    Returns
    -------
    scores : PromptScores
        Per-example probabilities before and after, per-class means; prints
        as a table.

    See Also
    --------
    plot_prompt_scores : The per-class means as a bar chart.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.utils import Bunch
    >>> from skhsfm.inspection import prompt_scores
    >>> fake = Bunch(
    ...     support_init_=np.array([[1.0, 0.0]]),
    ...     support_edited_=np.array([[0.0, 1.0]]),
    ...     support_labels_=np.array([0]),
    ... )
    >>> scores = prompt_scores(
    ...     fake, ["water", "land"], text_embeddings=np.eye(2), temperature=10.0
    ... )
    >>> scores.probabilities_before.round(4), scores.top_change_fraction
    (array([[1., 0.]]), 1.0)
    """
    init, edited, labels = support_arrays(estimator, "prompt_scores")
    names, groups = _prompt_groups(prompts)
    flat = [p for group in groups for p in group]
    text = _unit_rows(_text_embeddings(flat, embedder, text_embeddings, init.shape[1]))
    bounds = np.cumsum([0] + [len(group) for group in groups])
    centroids = _unit_rows(
        np.vstack([text[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
    )

    def probabilities(H):
        return _softmax(temperature * (_unit_rows(H) @ centroids.T))

    return PromptScores(
        prompt_names=names,
        labels=labels,
        probabilities_before=probabilities(init),
        probabilities_after=probabilities(edited),
        temperature=float(temperature),
    )


def plot_prompt_scores(result, *, class_names=None, path=None):
    """Bar chart of zero-shot prompt probabilities before and after editing.

    One panel per class: for each prompt, the mean probability over the class's
    support examples before (light) and after (dark) editing, with each
    example's value as a dot.

    Parameters
    ----------
    result : PromptScores
        From :func:`~skhsfm.inspection.prompt_scores`.
    class_names : dict or sequence, default=None
        Display names of the class labels.
    path : str or path-like, default=None
        Where to save the figure.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    check_result(result, PromptScores, "plot_prompt_scores", "prompt_scores")
    classes = result.classes
    n_prompts = len(result.prompt_names)
    n_cols = min(len(classes), 4)
    n_rows = -(-len(classes) // n_cols)
    width = max(3.2, 0.9 * n_prompts + 1.2)
    fig = new_figure("plot_prompt_scores", figsize=(width * n_cols, 3.4 * n_rows + 0.3))
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    class_name = namer(class_names, "class")
    x = np.arange(n_prompts)
    jitter = np.random.RandomState(0)
    for k, c in enumerate(classes.tolist()):
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
        changed = result.by_class[c]
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
    return finish(fig, path)
