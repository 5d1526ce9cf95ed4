"""What the learned feature edits mean: statistics, retrieval, CLIP prompts, plots.

HSFM edits a small support set of embeddings (``support_edited_ -
support_init_`` on a fitted :class:`~skhsfm.HSFMClassifier`). The paper shows
that these edits move embeddings along the spurious attribute (the background
for Waterbirds, gender for CelebA) by decoding them with a diffusion model. This
subpackage gives lighter ways to see the same thing on your own data. Each
analysis is a function returning a dataclass result; each figure takes a result
(``plot_*(result)`` or ``result.plot()``, scikit-learn's Display idea):

- :func:`edit_statistics` → :class:`EditStatistics`: per support example, the
  edit norm, its norm relative to the embedding, and its cosine with the
  class-mean difference and with an attribute direction
  (:func:`mean_difference_direction`); a per-class summary.
- :func:`edit_retrieval` → :class:`EditRetrieval`: nearest neighbors of each
  initial and edited support embedding in a labelled gallery; how often the
  neighbors' attribute (good) or class (bad) changes after editing.
  :func:`plot_retrieval` shows the images.
- :func:`prompt_scores` → :class:`PromptScores`: zero-shot CLIP attribute
  probabilities of the initial and edited embeddings from text prompts.
  :func:`plot_prompt_scores`.
- :func:`edit_projection` → :class:`EditProjection`: a 2-D PCA of the support
  set, its edits and the hard set. :func:`plot_edit_projection`.
- :func:`training_curves` → :class:`TrainingCurves`: the per-epoch history of
  a fitted HSFM or AFR head. :func:`plot_training_curves` (which also takes the
  fitted estimator directly).

The edit analyses take a fitted ``HSFMClassifier`` or any object with the
arrays ``support_init_``, ``support_edited_`` and ``support_labels_`` (e.g. a
:class:`~sklearn.utils.Bunch`, to inspect edits made some other way). Figures
need matplotlib, imported on first use; they are built as
:class:`matplotlib.figure.Figure` objects without pyplot, so no backend is
selected or changed.
"""

from skhsfm.inspection._projection import (
    EditProjection,
    edit_projection,
    plot_edit_projection,
)
from skhsfm.inspection._prompts import PromptScores, plot_prompt_scores, prompt_scores
from skhsfm.inspection._retrieval import EditRetrieval, edit_retrieval, plot_retrieval
from skhsfm.inspection._statistics import (
    EditStatistics,
    edit_statistics,
    mean_difference_direction,
)
from skhsfm.inspection._training_curves import (
    TrainingCurves,
    plot_training_curves,
    training_curves,
)

__all__ = [
    "EditProjection",
    "EditRetrieval",
    "EditStatistics",
    "PromptScores",
    "TrainingCurves",
    "edit_projection",
    "edit_retrieval",
    "edit_statistics",
    "mean_difference_direction",
    "plot_edit_projection",
    "plot_prompt_scores",
    "plot_retrieval",
    "plot_training_curves",
    "prompt_scores",
    "training_curves",
]
