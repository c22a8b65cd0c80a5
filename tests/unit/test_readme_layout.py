"""The README's Design table names every room of the tree, and names nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ROOT / "dci6_processing"


def design_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| room | what it holds |")
    end = text.index("\n\n", start)
    return text[start:end]


def named(table: str) -> set[str]:
    return set(re.findall(r"`([\w./]+)`", table))


def product_modules() -> set[Path]:
    return {path.relative_to(PRODUCT) for path in PRODUCT.rglob("*.py")
            if path.name != "__init__.py" and "__pycache__" not in path.parts}


def test_every_product_module_is_in_the_design_table() -> None:
    names = named(design_table())
    bare = {name.removesuffix(".py") for name in names}
    missing = sorted(str(module) for module in product_modules()
                     if module.name not in names and module.stem not in bare)
    assert missing == [], f"README's Design table does not name: {missing}"


def test_every_file_the_design_table_names_exists() -> None:
    table = design_table()
    modules = {module.name for module in product_modules()}
    for name in sorted(named(table)):
        if name.endswith(".py"):
            assert name in modules, f"README's Design table names {name}, which is not in the tree"
        elif name.endswith("/"):
            bases = (ROOT, PRODUCT, ROOT / "sandbox" / "pmdci6_sandbox")
            assert any((base / name).is_dir() for base in bases), name


def test_every_top_level_directory_is_in_the_design_table() -> None:
    names = named(design_table())
    tracked = {"dci6_processing", "xml", "etc", "bench", "tests", "sandbox"}
    for directory in sorted(tracked):
        assert (ROOT / directory).is_dir(), directory
    assert {"xml/", "etc/", "bench/", "tests/", "sandbox/pmdci6_sandbox/"} <= names
