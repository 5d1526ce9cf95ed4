"""Every code block of the README and the user guide runs offline as written.

A reader copies blocks in order, so the Python blocks of one page run in order
in one namespace (as the examples of a docstring do; a block written as a
doctest, ``>>>`` lines, also has its outputs checked), in a temporary working
folder, with scikit-learn's configuration restored afterwards. Nothing may be
downloaded: ``HF_HUB_OFFLINE`` is set, so a block that needed hub weights
would fail here.

A Python block that cannot run here (it needs a cluster, your data or
weights) says so in a comment just before it and names an example that runs
the same thing::

    .. not run: needs a Dask scheduler; examples/dask_search.py runs it locally

(``<!-- not run: ... examples/x.py ... -->`` in Markdown).

Shell blocks are not executed (``skhsfm benchmark`` takes a minute and is
tested in ``test_cli*.py``): each ``skhsfm ...`` line must be accepted by the
command's own parser, and each ``python file.py`` / ``bash file`` line must
name a file of the checkout.
"""

import doctest
import re
import shlex
from pathlib import Path

import pytest
import sklearn

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    ROOT / "docs" / "install.rst",
    ROOT / "docs" / "quickstart.rst",
    *sorted((ROOT / "docs" / "user_guide").glob("*.rst")),
]

#: Packages of optional extras: a block needing one that is not installed is
#: skipped, not failed.
OPTIONAL = {"skops", "skl2onnx", "onnxruntime", "dask", "distributed", "ray"}

DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

_MD_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
_MD_NOT_RUN = re.compile(r"<!--\s*not run:(.*?)-->\s*$", re.S)
_RST_NOT_RUN = re.compile(r"^\.\. not run:(.*)$")


def _rst_blocks(text):
    """``(language, code, not_run_note)`` of each ``code-block``."""
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)\.\. code-block:: *(\w+)", line)
        if not match:
            continue
        indent = len(match.group(1))
        body, j = [], i + 1
        while j < len(lines) and (
            not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent
        ):
            body.append(lines[j])
            j += 1
        code = [b for b in body if not b.strip().startswith(":")]  # options
        width = min((len(b) - len(b.lstrip()) for b in code if b.strip()), default=0)
        source = "\n".join(b[width:] for b in code).strip("\n") + "\n"
        note = None
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        if k >= 0 and _RST_NOT_RUN.match(lines[k].strip()):
            note = _RST_NOT_RUN.match(lines[k].strip()).group(1)
        blocks.append((match.group(2), source, note))
    return blocks


def _md_blocks(text):
    blocks = []
    for match in _MD_BLOCK.finditer(text):
        before = _MD_NOT_RUN.search(text[: match.start()].rstrip() + "\n")
        note = before.group(1) if before else None
        blocks.append((match.group(1) or "text", match.group(2), note))
    return blocks


def blocks_of(path):
    text = path.read_text()
    return _md_blocks(text) if path.suffix == ".md" else _rst_blocks(text)


def page_id(path):
    return str(path.relative_to(ROOT))


def _check_not_run(path, note):
    names = re.findall(r"examples/(\w+\.py)", note)
    assert names, (
        f"{page_id(path)}: a block marked 'not run' must name the example that "
        f"runs it instead (examples/NAME.py); got: {note.strip()}"
    )
    for name in names:
        assert (ROOT / "examples" / name).is_file(), f"{note}: no examples/{name}"


def _run_block(code, name, namespace):
    """Run a block in ``namespace``: a doctest (``>>>`` lines) with its
    outputs checked, else as a script."""
    if not code.lstrip().startswith(">>>"):
        exec(compile(code, name, "exec"), namespace)
        return
    test = doctest.DocTestParser().get_doctest(code, namespace, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    report = []
    result = runner.run(test, out=report.append, clear_globs=False)
    assert result.failed == 0, "".join(report)


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_python_blocks_run(path, tmp_path, monkeypatch):
    blocks = [(code, note) for lang, code, note in blocks_of(path) if lang == "python"]
    if not blocks:
        pytest.skip("no Python block")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace = {"__name__": "__snippet__"}
    with sklearn.config_context():
        for i, (code, note) in enumerate(blocks):
            if note is not None:
                _check_not_run(path, note)
                continue
            try:
                _run_block(code, f"{page_id(path)}, Python block {i + 1}", namespace)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] in OPTIONAL:
                    pytest.skip(f"needs {exc.name}, an optional extra")
                raise


def _shell_lines(code):
    """Logical lines (``\\`` continuations joined), comments removed."""
    joined = code.replace("\\\n", " ")
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            yield words


def _check_shell(words, parser):
    if words[0] == "skhsfm" or words[:3] == ["python", "-m", "skhsfm"]:
        args = words[1:] if words[0] == "skhsfm" else words[3:]
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"`{shlex.join(words)}` is refused: {exc}") from None
        return
    if words[0] in ("python", "bash") and words[1] != "-m":
        assert (ROOT / words[1]).is_file(), f"`{shlex.join(words)}`: no {words[1]}"
        return
    known = (["pip"], ["python", "-m"], ["cd"])
    assert any(words[: len(k)] == k for k in known), (
        f"`{shlex.join(words)}`: a command this test does not know how to check"
    )


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_shell_blocks_are_valid_commands(path, capsys):
    from skhsfm.cli import build_parser

    blocks = [code for lang, code, _ in blocks_of(path) if lang in ("bash", "sh")]
    if not blocks:
        pytest.skip("no shell block")
    parser = build_parser()
    for code in blocks:
        for words in _shell_lines(code):
            while "&&" in words:  # a && b: check each
                cut = words.index("&&")
                _check_shell(words[:cut], parser)
                words = words[cut + 1 :]
            _check_shell(words, parser)


def test_the_blocks_are_found():
    readme = blocks_of(ROOT / "README.md")
    assert sum(lang == "python" for lang, _, _ in readme) >= 2
    groups = blocks_of(ROOT / "docs" / "user_guide" / "groups.rst")
    assert [lang for lang, _, _ in groups].count("python") >= 2
