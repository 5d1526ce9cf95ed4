"""Where the documentation is, and the API page of each estimator.

The HTML representation of an estimator in a notebook links its class name
(the "?" icon) and each parameter to its API page through scikit-learn's
``_doc_link_module`` / ``_doc_link_template`` attributes;
:class:`~skhsfm._base.BaseHead` and :class:`~skhsfm.embedding.BackboneEmbedder`
set them from here.

Which site the links open is one setting, read each time a repr is drawn:

1. the environment variable ``SKHSFM_DOCS_URL``: the base address of a built
   site (``https://docs.example.org/skhsfm/``) or the folder of a local build
   (``docs/_build/html``); ``none`` turns the links off;
2. otherwise the local build of this checkout, ``docs/_build/html``, when it
   exists (``python -m sphinx -W -b html docs docs/_build/html``);
3. otherwise :data:`PUBLISHED_URL` once :data:`PUBLISHED` says the site serves
   pages, and no link before that (a link to a site that serves nothing would
   land on an error page).
"""

import os
from pathlib import Path

__all__ = [
    "DOC_LINK_MODULE",
    "DOC_LINK_TEMPLATE",
    "DOCS_URL_VARIABLE",
    "PUBLISHED",
    "PUBLISHED_URL",
    "docs_url",
]

#: Where the built Sphinx site (``docs/``) is to be published; the site's
#: canonical address (``html_baseurl``).
PUBLISHED_URL = "https://skhsfm.readthedocs.io/en/stable/"

#: Whether :data:`PUBLISHED_URL` serves the pages yet. Set it to True when the
#: site goes live; until then the repr links only to a local or configured build.
PUBLISHED = False

#: The environment variable that points the links at a built site.
DOCS_URL_VARIABLE = "SKHSFM_DOCS_URL"

#: Estimators whose class lives in this package get a documentation link.
DOC_LINK_MODULE = "skhsfm"

# The local build of a source checkout: <checkout>/docs/_build/html.
_LOCAL_BUILD = Path(__file__).resolve().parents[2] / "docs" / "_build" / "html"

_OFF = {"", "none", "off", "0", "false"}


def _folder_url(folder):
    return Path(folder).expanduser().resolve().as_uri() + "/"


def docs_url():
    """The base address the documentation links use now; ``""`` for no links.

    Returns
    -------
    url : str
        Ends with ``/``; a ``file://`` address for a local build.
    """
    value = os.environ.get(DOCS_URL_VARIABLE)
    if value is not None:
        value = value.strip()
        if value.lower() in _OFF:
            return ""
        if "://" in value:
            return value if value.endswith("/") else value + "/"
        return _folder_url(value)  # a folder
    if (_LOCAL_BUILD / "index.html").is_file():
        return _folder_url(_LOCAL_BUILD)
    return PUBLISHED_URL if PUBLISHED else ""


class _DocLinkTemplate:
    """``_doc_link_template`` of skhsfm's estimators: an API page address made
    from :func:`docs_url` when it is read, so that the setting is followed
    without restarting Python; ``""`` (no link) when there is no site."""

    #: The API page of an estimator under the site's base address, from the
    #: public module (the class's module up to its first private part) and the
    #: class name: ``api/generated/skhsfm.HSFMClassifier.html``.
    PAGE = "api/generated/{estimator_module}.{estimator_name}.html"

    def __get__(self, instance, owner=None):
        base = docs_url()
        return base + self.PAGE if base else ""


#: Set as ``_doc_link_template`` on skhsfm's estimator classes.
DOC_LINK_TEMPLATE = _DocLinkTemplate()
