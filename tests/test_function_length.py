"""Functions kept short (issue 43): no function or method in serlib/ over 80 lines.

A function's length is ``end_lineno - lineno + 1`` of its ``def`` (decorators excluded, docstring and
comments included), nested functions counted on their own as well as inside their parent.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONGEST_FUNCTION = 80

# Functions allowed over the limit: none (issue 43 split the last three). A name added here must say why.
ALLOWED_LONG: set[tuple[str, str]] = set()


def function_lengths(package: Path) -> list[tuple[str, int, str, int]]:
    """(file relative to the package's parent, line, name, length) of every function under ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                found.append((name, node.lineno, node.name, node.end_lineno - node.lineno + 1))
    return found


def long_functions(
    package: Path, allowed: set[tuple[str, str]], limit: int = LONGEST_FUNCTION
) -> tuple[list[str], list[str]]:
    """The functions over ``limit`` lines that ``allowed`` does not name ("file:line name length"), and
    the allowed (file, name) pairs that are stale: no such function, or none of that name over ``limit``."""
    lengths = function_lengths(package)
    too_long = [
        f"{file}:{line} {name} {length}"
        for file, line, name, length in lengths
        if length > limit and (file, name) not in allowed
    ]
    stale = []
    for file, name in sorted(allowed):
        sizes = [length for f, _, n, length in lengths if (f, n) == (file, name)]
        if not sizes:
            stale.append(f"{file} {name}: no such function")
        elif max(sizes) <= limit:
            stale.append(f"{file} {name}: {max(sizes)} lines, not over {limit}; drop it from ALLOWED_LONG")
    return too_long, stale


def test_no_function_in_serlib_is_over_80_lines_and_the_allowlist_is_not_stale():
    too_long, stale = long_functions(ROOT / "serlib", ALLOWED_LONG)
    assert not too_long, f"functions over {LONGEST_FUNCTION} lines (split them): {too_long}"
    assert not stale, f"stale entries of ALLOWED_LONG: {stale}"


def _function(name: str, lines: int, decorators: int = 0) -> str:
    """Source of a function of exactly ``lines`` lines (a def line and ``lines - 1`` statements)."""
    return "@staticmethod\n" * decorators + f"def {name}():\n" + "    x = 1\n" * (lines - 1)


def test_the_check_names_a_long_function_and_a_stale_allowlist(tmp_path: Path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text(_function("short", 80, decorators=3) + _function("long", 81))
    (package / "sub" / "b.py").write_text(
        "class C:\n" + "".join("    " + line + "\n" for line in _function("method", 90).splitlines())
    )
    (package / "c.py").write_text(_function("allowed", 95) + _function("was_long", 12))
    allowed = {("pkg/c.py", "allowed"), ("pkg/c.py", "was_long"), ("pkg/c.py", "gone")}
    too_long, stale = long_functions(package, allowed)
    assert too_long == ["pkg/a.py:84 long 81", "pkg/sub/b.py:2 method 90"]
    assert stale == [
        "pkg/c.py gone: no such function",
        "pkg/c.py was_long: 12 lines, not over 80; drop it from ALLOWED_LONG",
    ]
    assert long_functions(package, {("pkg/a.py", "long"), ("pkg/sub/b.py", "method")}) == (
        ["pkg/c.py:1 allowed 95"],
        [],
    )
