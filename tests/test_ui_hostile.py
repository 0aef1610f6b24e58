"""Hostile input sent straight to the app's public endpoints (raw HTTP, as any script could):
bad label values, unknown, foreign and malformed assignment ids, over-long and invisible
names, a burst beyond the rate limit, invite headers that identify nobody, and path traversal
in every file, folder or name parameter (the training run's name, uploads, files the server
holds, model selections on a guarded server, the export's arguments).

Each case is one parametrized test; a refusal is one clear message and changes nothing.
tests/test_hostile.py holds the file and store cases; tests/test_browser_hostile.py the HTML.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app_support import ApiError, call_api, lab_ui, serve
from labeling.store import StoreConfig, assignments_t, open_store
from labeling.testing import tiny_tasks
from labeling.vocab import TAGS
from rm.checkpoint import CONFIG_FILE
from ui import train
from ui.auth import Access
from ui.context import App

RATE = (3, 600.0)  # the module's store: 3 labels per annotator in 10 minutes
INVITE = "X-RMLab-Invite"


@dataclass
class Lab:
    root: Path
    runs: Path
    store: object
    open_url: str  # no roles: typed names, everyone a researcher
    guarded_url: str  # invite sign-in, researcher token "s3cret"
    client: httpx.Client

    def call(self, name: str, *data, guarded: bool = False, headers: dict | None = None):
        return call_api(self.client, self.guarded_url if guarded else self.open_url, name, *data, headers=headers)

    def files(self) -> set[Path]:
        return {p for p in self.root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    runs = root / "runs"
    (runs / "rm" / "rm-a").mkdir(parents=True)  # a listed checkpoint (the guard runs before any load)
    (runs / "rm" / "rm-a" / CONFIG_FILE).write_text("{}")
    store = open_store(root / "labels.db", StoreConfig(seed=0, rate_limit=RATE[0], rate_window=RATE[1]))
    store.import_tasks(tiny_tasks(pairs=8, triads=0, agreement=2, gold=2))
    demos = [lab_ui(store, Access(), runs), lab_ui(store, Access(admin_token="s3cret", signin="invite"), runs)]
    urls = [serve(demo).rstrip("/") for demo in demos]
    with httpx.Client(timeout=120) as client:
        yield Lab(root, runs, store, *urls, client)
    for demo in demos:
        demo.close()
    store.close()


def served_to(store, annotator: str) -> int:
    """How many assignments were ever served to `annotator`."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(assignments_t)
                            .where(assignments_t.c.annotator == annotator)).scalar()


def labels_of(store, annotator: str) -> int:
    return int((store.labels().annotator == annotator).sum())


# ----------------------------------------------------------------------------- submit_label values

OWN, FOREIGN = "own", "foreign"  # stand-ins for ann's open assignment id and bob's
GOOD = {"annotator": "ann", "assignment_id": OWN, "choice": "A", "strength": "clearly", "rationale": "", "tags": []}
SUBMITS = [  # (fields that differ from GOOD, the message after "The label was not stored: ")
    ({"choice": "maybe"}, "choice must be one of A, B, tie, both_bad, got 'maybe'"),
    ({"choice": "a"}, "choice must be one of A, B, tie, both_bad, got 'a'"),
    ({"choice": "left"}, "choice must be one of A, B, tie, both_bad, got 'left'"),  # the store's word, not the API's
    ({"choice": None}, "choice must be one of A, B, tie, both_bad, got None"),
    ({"choice": ["A"]}, "choice must be one of A, B, tie, both_bad, got ['A']"),
    ({"strength": "hugely"}, "strength must be one of slightly, clearly, much, got 'hugely'"),
    ({"strength": 2}, "strength must be one of slightly, clearly, much, got 2"),
    ({"strength": None}, "strength must be one of slightly, clearly, much, got None"),
    ({"tags": ["rude"]}, "unknown tag 'rude'; tags are: " + ", ".join(TAGS)),
    ({"tags": "hedges"}, "tags must be a list of strings, got str"),
    ({"tags": {"hedges": 1}}, "tags must be a list of strings, got dict"),
    ({"tags": [1]}, "tags must be a list of strings"),
    ({"tags": ["hedges", "hedges"]}, "tag 'hedges' is given twice"),
    ({"tags": [*TAGS, "hedges"]}, "tags: 7 given, at most 6 (each tag once)"),
    ({"rationale": "r" * 2_000_000}, "rationale is 2,000,000 characters long; the limit is 2,000"),
    ({"rationale": "a\x00b"}, "rationale contains a NUL character at position 1"),
    ({"rationale": 5}, "rationale must be a string, got int"),
    ({"assignment_id": 999_999}, "no assignment with id 999999"),
    ({"assignment_id": FOREIGN}, "assignment {foreign} belongs to another annotator"),
    ({"assignment_id": "abc"}, "assignment_id must be the integer id of an assignment, got 'abc'"),
    ({"assignment_id": 1.5}, "assignment_id must be the integer id of an assignment, got 1.5"),
    ({"assignment_id": True}, "assignment_id must be the integer id of an assignment, got True"),
    ({"assignment_id": None}, "assignment_id must be the integer id of an assignment, got None"),
    ({"assignment_id": [1]}, "assignment_id must be the integer id of an assignment, got [1]"),
    ({"assignment_id": -1}, "assignment_id must be the integer id of an assignment, got -1"),
    ({"assignment_id": 2 ** 70}, "assignment_id must be the integer id of an assignment, got 1180591620717411303424"),
    ({"assignment_id": "\u0661"}, "assignment_id must be the integer id of an assignment, got '\u0661'"),  # Arabic 1
    ({"assignment_id": "1; DROP TABLE labels"},
     "assignment_id must be the integer id of an assignment, got '1; DROP TABLE labels'"),
]


@pytest.mark.parametrize("changes, message", SUBMITS)
def test_a_bad_submit_is_refused_and_stores_nothing(lab, changes, message):
    own = lab.call("next_task", "ann")["assignment_id"]
    foreign = lab.call("next_task", "bob")["assignment_id"]
    args = GOOD | changes
    if args["assignment_id"] in (OWN, FOREIGN):
        args["assignment_id"] = own if args["assignment_id"] == OWN else foreign
    with pytest.raises(ApiError) as refused:
        lab.call("submit_label", *args.values())
    assert str(refused.value) == f"The label was not stored: {message.format(foreign=foreign)}."
    assert labels_of(lab.store, "ann") == labels_of(lab.store, "bob") == 0
    assert lab.call("next_task", "ann")["assignment_id"] == own  # still open, served again


# ----------------------------------------------------------------------------- names

INVISIBLE = "Your name contains the invisible or control character U+{}; use letters, digits, spaces and punctuation."
NAMES = [  # (typed name, the message)
    ("x" * 200, "Your name is 200 characters long; the limit is 100."),
    ("a" * 101, "Your name is 101 characters long; the limit is 100."),
    ("an\nn", INVISIBLE.format("000A")),
    ("an\x00n", INVISIBLE.format("0000")),
    ("an\u200bn", INVISIBLE.format("200B")),  # zero-width space
    ("ann\u202e", INVISIBLE.format("202E")),  # right-to-left override
    ("\x1b[2Jann", INVISIBLE.format("001B")),  # a terminal escape
    ("  \t ", "Enter your name (or sign in with Hugging Face) to start labeling."),
]


@pytest.mark.parametrize("endpoint", ["next_task", "submit_label", "sign_in"])
@pytest.mark.parametrize("name, message", NAMES)
def test_a_bad_name_is_refused_with_its_reason(lab, endpoint, name, message):
    args = {"next_task": (name,), "submit_label": (name, 1, "A", "clearly", "", []),
            "sign_in": (name, "", "")}[endpoint]  # sign_in: name, researcher token, invite
    labels = len(lab.store.labels())
    with pytest.raises(ApiError) as refused:
        lab.call(endpoint, *args)
    assert str(refused.value) == message
    assert len(lab.store.labels()) == labels


@pytest.mark.parametrize("endpoint", ["next_task", "submit_label"])  # sign_in's textbox makes 5 the text "5"
def test_a_name_that_is_not_text_is_refused(lab, endpoint):
    with pytest.raises(ApiError, match=r"^Your name must be a string, got int\.$"):
        lab.call(endpoint, *{"next_task": (5,), "submit_label": (5, 1, "A", "clearly", "", [])}[endpoint])


@pytest.mark.parametrize("name, message", [
    ("x" * 200, "No invite was made: name is 200 characters long; the limit is 100."),
    ("bea\nadmin", "No invite was made: name contains the invisible or control character U+000A; "
                   "use letters, digits, spaces and punctuation."),
    ("", "No invite was made: name must be a non-empty name."),
])
def test_invites_refuse_bad_names(lab, name, message):
    with pytest.raises(ApiError) as refused:
        lab.call("create_invite", name)
    assert str(refused.value) == message
    assert all(i.name != name for i in lab.store.list_invites())


# ----------------------------------------------------------------------------- invite sign-in


@pytest.mark.parametrize("headers, message", [
    (None, "Sign in with your invite"),
    ({INVITE: ""}, "Sign in with your invite"),
    ({INVITE: "wrong"}, "This invite code is not valid"),
    ({INVITE: "x" * 10_000}, "This invite code is not valid"),
    ({INVITE: "' OR '1'='1"}, "This invite code is not valid"),
    ({"X-Forwarded-User": "victim", "Authorization": "Bearer victim"}, "Sign in with your invite"),
])
def test_a_typed_name_or_a_forged_header_identifies_nobody(lab, headers, message):
    for endpoint, args in (("next_task", ("victim",)), ("submit_label", ("victim", 1, "A", "clearly", "", []))):
        with pytest.raises(ApiError, match=message):
            lab.call(endpoint, *args, guarded=True, headers=headers)
    assert served_to(lab.store, "victim") == 0 and labels_of(lab.store, "victim") == 0


def test_an_invite_labels_only_its_own_assignments(lab):
    eve = {INVITE: lab.store.create_invite("eve")}
    victims = lab.call("next_task", "dan")["assignment_id"]
    refusal = f"^The label was not stored: assignment {victims} belongs to another annotator.$"
    with pytest.raises(ApiError, match=refusal):
        lab.call("submit_label", "dan", victims, "A", "clearly", "", [], guarded=True, headers=eve)
    assert labels_of(lab.store, "dan") == labels_of(lab.store, "eve") == 0
    # a revoked invite is refused from the next call on
    lab.store.revoke_invite("eve")
    with pytest.raises(ApiError, match="This invite code is not valid"):
        lab.call("next_task", "eve", guarded=True, headers=eve)


# ----------------------------------------------------------------------------- rate limit


def test_a_burst_beyond_the_rate_limit_is_refused_with_a_wait(lab):
    task = lab.call("next_task", "burst")
    acked = []
    for _ in range(RATE[0]):
        out = lab.call("submit_label", "burst", task["assignment_id"], "B", "clearly", "", [])
        acked.append((task["assignment_id"], out["label_id"]))
        task = out["next"]
    with pytest.raises(ApiError, match=r"^The label was not stored: 3 labels in the last 600 seconds is faster than "
                                       r"anyone reads; wait \d+ s, then submit again "
                                       r"\(the limit is RMLAB_RATE_LIMIT=3/600\)\.$"):
        lab.call("submit_label", "burst", task["assignment_id"], "B", "clearly", "", [])
    # a retry of an acknowledged label is not a new label: answered, not refused
    last, label_id = acked[-1]
    assert lab.call("submit_label", "burst", last, "B", "clearly", "", [])["label_id"] == label_id
    assert labels_of(lab.store, "burst") == RATE[0]
    assert lab.call("next_task", "burst")["assignment_id"] == task["assignment_id"]  # still open


# ----------------------------------------------------------------------------- paths


@pytest.mark.parametrize("model", [
    "../../etc", "/etc/passwd", "rm-a/../../..", "../rm/rm-a", "rm-a/", "~/.cache/huggingface",
    "file:///etc/passwd", "someone/evil-model", "rm-a, /etc", "runs/rm/rm-a",
])
def test_score_on_a_guarded_server_loads_only_listed_checkpoints(lab, model):
    with pytest.raises(ApiError, match=r"^Unknown model '.+': on this server `model` must be one of rm-a\.$"):
        lab.call("score", "q", "a", "b", model, guarded=True)


@pytest.mark.parametrize("name, folder", [
    ("../../x", "x"), ("/etc/cron.d/x", "etc-cron.d-x"), ("a/../../b", "a-..-..-b"), ("~/x", "x"),
    ("..\\..\\x", "x"), ("x\x00y", "x-y"), ("%2e%2e%2fx", "2e-2e-2fx"), ("..", None), ("", None),
])
def test_the_training_runs_name_stays_inside_runs_rm(lab, name, folder):
    """The Train tab's handler resolves the run (and writes its data) from any name."""
    before = lab.files()
    config = train.prepare(App(lab.store, Access(), lab.runs), train.KNOWN, None, "", {"name": name})
    out, data = Path(config.out), Path(config.data)
    assert out.parent == lab.runs / "rm" and data == lab.runs / "datasets" / f"{out.name}.jsonl"
    assert out.name == folder if folder else out.name.startswith("rm-")  # empty -> a timestamp
    assert data in lab.files() and lab.files() - before <= {data}  # two timestamp names may share a second


@pytest.mark.parametrize("path", ["/etc/passwd", "../../../../etc/passwd", "README.md", "labels.db"])
def test_a_file_the_server_holds_is_not_an_upload(lab, path):
    """gr.File takes only what was uploaded: a path to a server file is refused before any handler."""
    path = str(lab.root / path) if path == "labels.db" else path
    file = {"path": path, "meta": {"_type": "gradio.FileData"}}
    for endpoint, args in (("correlations", ("uploaded file", 10, "length_words", [], file)),
                           ("train", ("uploaded file", file, "", {"name": "stolen"}))):
        with pytest.raises(ApiError, match="^the endpoint failed$"):  # gradio's InvalidPathError, not shown
            lab.call(endpoint, *args)
    assert not (lab.runs / "datasets" / "stolen.jsonl").exists()


def test_an_upload_named_with_traversal_lands_in_gradios_folder_and_trains_inside_runs(lab, tmp_path):
    from gradio.utils import get_upload_folder

    from rm.testing import tiny_backbone

    rows = [{"prompt": f"q{i}", "chosen": "good answer", "rejected": "bad answer"} for i in range(6)]
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    uploaded = lab.client.post(f"{lab.open_url}/gradio_api/upload",
                               files=[("files", ("../../../escape.jsonl", body))])
    uploaded.raise_for_status()
    path = Path(uploaded.json()[0])
    assert path.name == "escape.jsonl" and path.resolve().is_relative_to(Path(get_upload_folder()).resolve())

    before = lab.files()
    options = {"name": "../../escape", "backbone": tiny_backbone(tmp_path / "backbone"), "epochs": 1,
               "batch_size": 4, "lr": 1e-3}
    status = lab.call("train", "uploaded file", {"path": str(path), "meta": {"_type": "gradio.FileData"}}, "",
                      options)
    out = lab.runs / "rm" / "escape"
    assert status.startswith("**Done:**") and str(out) in status
    created = lab.files() - before
    assert created and all(p.is_relative_to(lab.runs) for p in created)
    assert {p.parent for p in created} >= {out, lab.runs / "datasets"}
    assert not (lab.root / "escape").exists() and not (lab.root.parent / "escape.jsonl").exists()


@pytest.mark.parametrize("aggregate, fmt", [
    ("../../x", "jsonl"), ("none", "../../etc/passwd"), ("none", "hf/../../../tmp/x"), ("/tmp", "jsonl"),
    ("none\x00", "jsonl"),
])
def test_export_takes_only_its_listed_choices(lab, aggregate, fmt):
    before = lab.files()
    with pytest.raises(ApiError, match=r"^Value: .* is not in the list of choices: "):
        lab.call("export_dataset", aggregate, fmt)
    assert lab.files() == before


def test_an_export_writes_nothing_beside_the_store_or_the_runs(lab):
    import zipfile

    before = lab.files()
    out = Path(lab.call("export_dataset", "none", "jsonl")["path"])
    assert set(zipfile.ZipFile(out).namelist()) >= {"preferences.jsonl", "export_config.json"}
    assert lab.files() == before


def test_an_invite_name_is_never_a_path(lab):
    before = lab.files()
    note = lab.call("create_invite", "../../evil")
    assert note.startswith(r"Invite for **\.\./\.\./evil**, shown only now")
    assert any(i.name == "../../evil" and i.active for i in lab.store.list_invites())
    lab.call("revoke_invite", "../../evil")
    assert lab.files() - before <= {lab.root / "labels.db-wal", lab.root / "labels.db-shm"}


@pytest.mark.parametrize("token", ["\ud800", "s3cret\x00", "S3CRET", " s3cret", "s3cre", 5, None, ["s3cret"]])
def test_a_malformed_researcher_token_grants_nothing(token):
    """No refusal is a traceback either: a lone surrogate has no UTF-8 form."""
    assert Access(admin_token="s3cret").grants(None, token) is False
