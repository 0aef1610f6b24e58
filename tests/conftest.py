"""Shared fixtures: paths to the optional real data in ../shared/data, a small label store, and
the whole UI served with roles configured."""
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real human preference data; tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def store(tmp_path):
    """A label store with a few tasks of every kind (modules with their own `store` override it)."""
    from labeling.store import StoreConfig, open_store
    from labeling.testing import tiny_tasks

    store = open_store(tmp_path / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks(pairs=3, triads=1, agreement=1, gold=1))
    yield store
    store.close()


@pytest.fixture(scope="module")
def guarded_app(tmp_path_factory):
    """The UI served with roles configured: researcher "carol" (a verified identity only) or the
    token "s3cret". Its URL; one server per test module."""
    from app_support import lab_ui, serve
    from labeling.store import StoreConfig, open_store
    from labeling.testing import tiny_tasks
    from ui.auth import Access

    store = open_store(tmp_path_factory.mktemp("guarded") / "labels.db", StoreConfig(seed=0))
    store.import_tasks(tiny_tasks())
    demo = lab_ui(store, Access(researchers=frozenset({"carol"}), admin_token="s3cret"))
    yield serve(demo)
    demo.close()
    store.close()
