"""Images to frozen-backbone embeddings: :class:`BackboneEmbedder`.

The estimator lives in :mod:`skhsfm.embedding._embedder`; it delegates to one
module per concern: the backbone registry and its one model-name parser
(``_registry``), a loader per library (``_open_clip``, ``_torchvision``,
``_custom``), cache-first weight fetching (``_hub``), image decoding
(``_images``), cache keys (``_keys``) and the batched forward passes
(``_forward``, ``_text``).

Importing this package imports neither torch, open_clip, torchvision, PIL nor
tqdm; they are imported where they are used.
"""

from skhsfm.embedding._embedder import BackboneEmbedder

__all__ = ["BackboneEmbedder"]
