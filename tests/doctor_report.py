"""Reading `pmdci6 doctor`'s printed report in tests."""

from __future__ import annotations


def printed_overrides(output: str) -> str:
    """Every routes.toml entry doctor printed (under "override (add to ...)" or "override
    (replace the route's entry in ...)"), as one routes.toml."""
    blocks: list[str] = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("      override ("):
            block = []
            for follow in lines[index + 1:]:
                if not follow.startswith(" " * 8):
                    break
                block.append(follow.strip())
            blocks.append("\n".join(block))
    return "\n\n".join(blocks) + "\n"
