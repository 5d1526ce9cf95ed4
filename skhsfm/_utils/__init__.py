"""Plumbing shared by the package, kept out of the method's own modules.

- :mod:`~skhsfm._utils.atomic`: atomic writes and verified files.
- :mod:`~skhsfm._utils.hashing`: the one content digest.
- :mod:`~skhsfm._utils.progress`: progress callbacks and bars.
- :mod:`~skhsfm._utils.table`: the one text-table renderer.
- :mod:`~skhsfm._utils.text`: values as messages show them (``plain``).
- :mod:`~skhsfm._utils.docstrings`: shared parameter texts (``fill_doc``).
- :mod:`~skhsfm._utils.deprecation`: one wording for deprecation warnings.
- :mod:`~skhsfm._utils.doc_link`: where the HTML repr's "?" links to.
- :mod:`~skhsfm._utils.imports`: optional imports with install hints.
- :mod:`~skhsfm._utils.lazy`: lazy inputs (dask arrays, memmaps) read by rows.
- :mod:`~skhsfm._utils.torch`: devices, generators and tensor conversion.

Nothing here is public API.
"""
