"""app.py: the entry point's options and what it serves."""
from __future__ import annotations

import pytest

import app


def test_host_and_port_default_to_the_gradio_env_then_to_ours(capsys):
    assert vars(app.parse_args([], env={})) == {"host": "127.0.0.1", "port": 7860, "db": None, "share": False,
                                                "runs": None}
    spaces = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861"}
    assert (app.parse_args([], env=spaces).host, app.parse_args([], env=spaces).port) == ("0.0.0.0", 7861)
    assert app.parse_args(["--port", "9000", "--host", "::1"], env=spaces).port == 9000
    with pytest.raises(SystemExit):
        app.parse_args([], env={"GRADIO_SERVER_PORT": "http"})
    assert "invalid int value: 'http'" in capsys.readouterr().err


def test_main_serves_the_env_store_and_runs(tmp_path, monkeypatch):
    (tmp_path / "runs" / "rm" / "from-env").mkdir(parents=True)
    (tmp_path / "runs" / "rm" / "from-env" / "rmlab_config.json").write_text("{}")
    monkeypatch.setenv("RMLAB_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("RMLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    launched, attached = {}, []
    monkeypatch.setattr(app, "launch", lambda demo, **kwargs: launched.update(demo=demo, **kwargs))
    # Hub sync is attached to the store before it is seeded (a restore needs an empty store)
    monkeypatch.setattr(app.hub_sync, "attach", lambda store, runs: attached.append((len(store.tasks()), runs)))
    app.main([])
    assert attached == [(0, tmp_path / "runs")]
    assert (launched["host"], launched["port"], launched["share"]) == ("127.0.0.1", 7999, False)
    assert (tmp_path / "env.db").is_file()  # the seeded store lives where RMLAB_DB says
    models = next(b for b in launched["demo"].blocks.values() if getattr(b, "elem_id", None) == "rm-models")
    assert models.choices == [("from-env", str(tmp_path / "runs" / "rm" / "from-env"))]


def test_a_bad_setting_is_one_error_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    env = {"PATH": "/usr/bin:/bin", "RMLAB_SIGNIN": "magic", "RMLAB_DB": str(tmp_path / "l.db"),
           "RMLAB_RUNS": str(tmp_path / "runs"), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    out = subprocess.run([sys.executable, "app.py", "--port", "0"], cwd=Path(app.__file__).parent, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == \
        ["error: RMLAB_SIGNIN='magic': use one of open, invite, oauth"]
