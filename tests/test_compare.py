"""analysis.compare: two responses under one RM, and several RMs on the same data."""
from __future__ import annotations

from analysis.compare import feature_diff


def test_feature_table_highlights_differences():
    diff = feature_diff("Is 2 + 2 = 5?", "Great question! Yes, it is 5.", "No, it is 4.")
    row = diff.set_index("feature")
    assert row.loc["flattery", "A"] == 1 and row.loc["flattery", "B"] == 0
    assert row.loc["flattery", "A − B"] == 1
