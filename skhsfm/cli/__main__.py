"""``python -m skhsfm.cli``: the same as the ``skhsfm`` command."""

from skhsfm.cli import main

raise SystemExit(main())
