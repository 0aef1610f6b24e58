"""labeling.dashboard: the per-annotator and per-kind tables, the headline numbers, the plots."""
from __future__ import annotations

import io

import pytest

from labeling import dashboard


def test_plots_keep_untrusted_names_literal(store):
    # a name that matplotlib would parse as broken mathtext must not break the dashboard
    assignment = store.next_assignment(r"$\frac$")
    store.submit(assignment.id, r"$\frac$", "left", 2)
    labels = store.labels()
    for figure in (dashboard.plot_label_counts(labels), dashboard.plot_biases(labels)):
        figure.savefig(io.BytesIO(), format="png")
        labels_shown = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
        assert r"\$\frac\$" in labels_shown




def test_tables_and_summary_count_labels(store):
    for who, choice in [("ann", "left"), ("ben", "right"), ("ann", "left")]:
        store.submit(store.next_assignment(who).id, who, choice, 2)
    labels = store.labels()
    table = dashboard.annotator_table(labels).set_index("annotator")
    assert table.loc["ann", "labels"] == 2 and table.loc["(all)", "labels"] == 3
    # ann picked left twice, ben right once: 2 of 3 decisive picks were left
    assert table.loc["ann", "left picks"].startswith("100% (") and table.loc["(all)", "left picks"].startswith("67% (")
    summary = dashboard.summary(labels)
    assert (summary["labels"], summary["annotators"]) == (3, 2)
    assert summary["left_share"][0] == pytest.approx(2 / 3)
    assert dashboard.summary(labels.iloc[:0]) == {}
    assert dashboard.kind_table(labels)["labels"].sum() == 3


def test_percent_and_ci_text():
    assert (dashboard.percent(0.666), dashboard.percent(None)) == ("67%", "–")
    assert dashboard.with_ci(0.5, 0.25, 0.75) == "50% (25–75)"
