"""labeling.dashboard: the per-annotator and per-kind tables, the headline numbers, the plots."""
from __future__ import annotations

import io

import pytest

from labeling import dashboard
from labeling.store import StoreConfig, open_store
from labeling.testing import tiny_tasks


@pytest.fixture
def store(tmp_path):
    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=3, triads=1, agreement=1, gold=1))
    yield store
    store.close()


def test_plots_keep_untrusted_names_literal(store):
    # a name that matplotlib would parse as broken mathtext must not break the dashboard
    assignment = store.next_assignment(r"$\frac$")
    store.submit(assignment.id, r"$\frac$", "left", 2)
    labels = store.labels()
    for figure in (dashboard.plot_label_counts(labels), dashboard.plot_biases(labels)):
        figure.savefig(io.BytesIO(), format="png")
        labels_shown = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
        assert r"\$\frac\$" in labels_shown


