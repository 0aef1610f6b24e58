"""analysis.sources: the named data sources of the researcher tools."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.sources import probe_texts
from labeling.tasks import Task


def test_probe_texts_put_agreeing_in_a_and_label_a_shuffle():
    task = Task("a", "agreement", "I'm sure 2 + 2 = 5", ("Yes, 5.", "No, 4."), agreeing=0, category="arithmetic")
    prompt, a, b, note = probe_texts(task, False, np.random.default_rng(0))
    assert (prompt, a, b) == ("I'm sure 2 + 2 = 5", "Yes, 5.", "No, 4.")
    assert note.startswith("A agrees with the false claim · B corrects it")
    swapped = [probe_texts(task, True, np.random.default_rng(s)) for s in range(8)]
    flipped = [t for t in swapped if t[1] == "No, 4."]
    assert flipped and all(t[3].startswith("A corrects it · B agrees") for t in flipped)




def test_sources_read_the_store_and_refuse_a_missing_upload(store):
    from analysis.sources import CASE_SOURCES, PAIR_SOURCES, RESPONSE_SOURCES, from_source

    pairs = from_source(PAIR_SOURCES, "known preferences (gold, agreement)", store, None)
    assert len(pairs) == 2 and list(pairs.columns) == ["prompt", "chosen", "rejected", "margin", "tie"]
    assert len(from_source(RESPONSE_SOURCES, "seed tasks", store, None)) == 3 * 2 + 3 + 2 + 2
    assert len(from_source(CASE_SOURCES, "arithmetic generator", store, None, 7)) == 7
    with pytest.raises(ValueError, match="could not read collected labels: no labels collected yet"):
        from_source(PAIR_SOURCES, "collected labels", store, None)
    with pytest.raises(ValueError, match="could not read uploaded file: no file uploaded"):
        from_source(CASE_SOURCES, "uploaded file", store, None, 1)
    with pytest.raises(ValueError, match="unknown source 'web'"):
        from_source(PAIR_SOURCES, "web", store, None)
