"""Where the documentation is published, and the API page of each estimator.

The HTML representation of an estimator in a notebook links its class name to
its API page through scikit-learn's ``_doc_link_module`` /
``_doc_link_template`` attributes; :class:`~skhsfm._base.BaseHead` and
:class:`~skhsfm.embedding.BackboneEmbedder` set them from here. The Sphinx site
(``docs/``) uses :data:`DOCS_URL` as its canonical address, so the links and the
site name the same place.
"""

__all__ = ["DOCS_URL", "DOC_LINK_MODULE", "DOC_LINK_TEMPLATE"]

#: Base URL where the built Sphinx site (``docs/``) is published.
DOCS_URL = "https://skhsfm.readthedocs.io/en/stable/"

#: Estimators whose class lives in this package get a documentation link.
DOC_LINK_MODULE = "skhsfm"

#: An API page, from the public module (the class's module up to its first
#: private part) and the class name: ``api/generated/skhsfm.HSFMClassifier.html``.
DOC_LINK_TEMPLATE = DOCS_URL + "api/generated/{estimator_module}.{estimator_name}.html"
