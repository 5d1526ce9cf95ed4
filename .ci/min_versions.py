"""What the minimum-versions job of ``.ci/run`` installs, read from setup.cfg.

``python .ci/min_versions.py constraints`` prints pip constraints pinning the
lowest version setup.cfg allows of every ``install_requires`` package (numpy,
scipy, scikit-learn, joblib, torch) and of torchvision (its lower bound in the
``dev`` extra is the release built for the lowest torch), so the lower bounds
users see are the versions CI tests.

``python .ci/min_versions.py requirements`` prints the ``dev`` extra without
the packages of the ``persist``, ``onnx``, ``docs`` and ``distributed``
extras (unless the ``all`` extra has them too): skops >= 0.12 needs numpy >=
1.25 and scipy >= 1.10, above the core's minimums, so those extras cannot be
installed with them (pip picks newer numpy and scipy for a user who asks for
them); Ray Data and Dask follow current numpy and pandas releases the same way;
and the docs are built in the main environment. Their tests skip in the minimum-versions
environment; the main environment runs them.
"""

import configparser
import re
import sys
from pathlib import Path

#: Extras' packages pinned too: torchvision must match the torch release.
PAIRED = ("torchvision",)

#: Extras left out of the minimum-versions environment (see above).
NOT_AT_MINIMUM = ("persist", "onnx", "docs", "distributed")

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][A-Za-z0-9_.]*))?")


def requirements(text):
    """``{name: lower bound or None}`` of the requirement lines in ``text``."""
    found = {}
    for line in text.splitlines():
        match = _REQUIREMENT.match(line)
        if match and not line.lstrip().startswith("#"):
            found[match.group(1)] = match.group(2)
    return found


def read(path):
    config = configparser.ConfigParser()
    config.read(path)
    extras = config["options.extras_require"]
    return requirements(config["options"]["install_requires"]), {
        name: requirements(extras[name]) for name in extras
    }


def constraints(path):
    core, extras = read(path)
    pins = {name: low for name, low in core.items() if low}
    pins.update({name: extras["dev"][name] for name in PAIRED})
    return [f"{name}=={low}" for name, low in pins.items()]


def test_requirements(path):
    _, extras = read(path)
    left_out = {name for extra in NOT_AT_MINIMUM for name in extras[extra]}
    left_out -= set(extras["all"])
    return [
        f"{name}>={low}" if low else name
        for name, low in extras["dev"].items()
        if name not in left_out
    ]


def main(what, path=Path(__file__).resolve().parents[1] / "setup.cfg"):
    lines = {"constraints": constraints, "requirements": test_requirements}[what]
    print("\n".join(lines(path)))


if __name__ == "__main__":
    main(*sys.argv[1:])
