"""The package stays easy to read: no function body over 100 lines.

(The rest of the house rules, no import cycles, no module over 600 lines,
private scikit-learn names in one module, are checked by the house check of
the CI's lint stage.)
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "skhsfm"
#: Most lines of a function's body, its docstring left out.
MAX_BODY_LINES = 100


def body_lines(node):
    """Lines from the first statement after the docstring to the last one."""
    body = node.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def long_functions(source, limit=MAX_BODY_LINES):
    """``[(name, line, body lines)]`` of the functions of ``source`` whose
    body is longer than ``limit``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = body_lines(node)
            if n > limit:
                found.append((node.name, node.lineno, n))
    return found


@pytest.mark.parametrize(
    "path",
    sorted(PACKAGE.rglob("*.py")),
    ids=lambda path: str(path.relative_to(PACKAGE.parent)),
)
def test_no_function_body_over_100_lines(path):
    found = long_functions(path.read_text(encoding="utf-8"))
    assert not found, (
        f"{path.relative_to(PACKAGE.parent)}: "
        + ", ".join(f"{name} (line {line}) has {n} lines" for name, line, n in found)
        + f"; split it into functions of at most {MAX_BODY_LINES} lines."
    )


def test_the_check_counts_the_body_without_the_docstring():
    lines = "\n".join(f"    x{i} = {i}" for i in range(101))
    source = f'def f():\n    """Doc.\n\n    More.\n    """\n{lines}\n'
    assert long_functions(source) == [("f", 1, 101)]
    assert long_functions(source, limit=101) == []
    nested = "def outer():\n    def inner():\n" + lines.replace("    ", "        ")
    assert [name for name, _, _ in long_functions(nested)] == ["outer", "inner"]
