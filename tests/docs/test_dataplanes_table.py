"""docs/dataplanes.md's feature-by-data-plane table and the conformance suite's marks
say the same thing (tests/conformance/table.py reads the reasons from the table)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tests.conformance import table

CONFORMANCE = Path(table.__file__).parent


def used_features() -> set[str]:
    """Every key a conformance case names in ``@pytest.mark.feature(KEY)``."""
    keys = set()
    for path in CONFORMANCE.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "feature"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                keys.add(str(node.args[0].value))
    return keys


@pytest.mark.parametrize("key", sorted(table.ROWS))
def test_every_row_the_suite_names_is_in_the_table(key: str) -> None:
    assert table.ROWS[key] in table.cells(), table.ROWS[key]


def test_every_feature_a_case_names_is_a_row_and_every_row_has_a_case() -> None:
    assert used_features() == set(table.ROWS)


@pytest.mark.parametrize(("key", "plane"), sorted(table.GAPS))
def test_a_gap_is_a_cell_that_says_what_the_plane_lacks(key: str, plane: str) -> None:
    cell = table.cells()[table.ROWS[key]][plane]
    assert not cell.startswith("yes"), cell
    assert table.gap(key, plane) == cell


@pytest.mark.parametrize("key", sorted(table.ROWS))
def test_a_cell_that_says_no_for_a_case_is_a_gap(key: str) -> None:
    row = table.cells()[table.ROWS[key]]
    says_no = {p for p, cell in row.items() if cell.startswith(("no", "**no**"))}
    assert says_no == {p for p in table.PLANES if (key, p) in table.GAPS}
