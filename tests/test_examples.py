"""Examples run from a terminal save their figures and say where.

The gallery (``docs/``) shows the figures of the examples it runs; a user who
runs ``python examples/plot_quickstart.py`` (as the README says) gets them as
PNG files. The other examples are exercised by the docs build.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_example_saves_its_figures(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "plot_quickstart.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for name in ("groups", "curves", "edits"):
        path = Path("skhsfm_out", "examples", f"quickstart_{name}.png")
        assert f"saved {path}" in done.stdout
        assert (tmp_path / path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
