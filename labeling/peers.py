"""Preference data from other tools: Chatbot Arena battles, Argilla and Label Studio exports.

Each format is one entry of PEER_FORMATS: `detect(record)` says whether a record is one of
its own, `read(record, where)` turns it into Judgements. A Judgement is one person's verdict
on two responses to one prompt, with the responses in the order the tool showed them
(a = model_a / the first or left response): choice "a", "b", "tie" or "both_bad".
How each format maps is documented in the README ("Interoperability").

Uses:
- training: `preference_rows(judgements)` gives rows of rm.data's explicit schema (rm.data
  calls `judgements_from_rows` on any data whose first row is a peer record);
- the label store: `read_peer(src)` reads a whole file, folder or Hub dataset (None when it
  is not a peer export), `pair_tasks` gives its pair tasks (labeling.tasks.load_tasks uses
  it), and `import_peer(store, peer)` stores tasks and labels in one transaction.
Every problem in a source is collected and raised as one ValueError ("nothing imported").
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

CHOICES = ("a", "b", "tie", "both_bad")
ROLE_NAMES = {"user": "Human", "assistant": "Assistant", "system": "System"}
# Words that peers' label values use for a verdict (lower case, '-'/'_' read as spaces).
VERDICT_WORDS = {
    "a": {"a", "1", "first", "left", "model a", "response a", "response 1", "answer 1"},
    "b": {"b", "2", "second", "right", "model b", "response b", "response 2", "answer 2"},
    "tie": {"tie", "equal", "same", "draw", "both good", "tie (bothgood)"},
    "both_bad": {"both bad", "bothbad", "neither", "none", "tie (bothbad)"},
}
PROMPT_FIELDS = ("prompt", "instruction", "question", "input", "query", "text")
RESPONSE_FIELDS = (("answer1", "answer2"), ("text1", "text2"), ("response1", "response2"),
                   ("response_1", "response_2"), ("response-1", "response-2"), ("response_a", "response_b"))


@dataclass(frozen=True)
class Judgement:
    """One verdict: `responses` in shown order, `choice` in CHOICES, `annotator` prefixed by
    the source ("arena:judge-7"); `task_id` is the peer's own id when it has one."""

    source: str
    prompt: str
    responses: tuple[str, str]
    choice: str
    annotator: str
    where: str
    task_id: str | None = None
    created_at: str | None = None  # UTC ISO
    seconds: float | None = None
    meta: dict = field(default_factory=dict, hash=False)


class PeerError(ValueError):
    """One record that cannot be read; collected into the source's one error."""


def transcript(messages: list[dict]) -> str:
    """Messages as one string: a lone user turn is its content, else hh-style turns
    ("\\n\\nHuman: ...\\n\\nAssistant: ..."), the form rm.data uses for conversations too."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0]["content"]
    return "".join(f"\n\n{ROLE_NAMES.get(m['role'], str(m['role']).title())}: {m['content']}" for m in messages)


def verdict(value, names: tuple[str, str] = ("", "")) -> str | None:
    """A peer's label value -> a CHOICE: one of the two response `names`, or a verdict word."""
    if not isinstance(value, str):
        value = str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if value is None:
        return None
    if value in names:
        return "ab"[names.index(value)]
    word = value.strip().lower().replace("_", " ").replace("-", " ")
    return next((choice for choice, words in VERDICT_WORDS.items() if word in words), None)


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PeerError(f"{what}: expected a non-empty string, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _iso(value) -> str | None:
    """Epoch seconds or an ISO time -> the store's fixed-width UTC ISO time; None when absent."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        when = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str) and value:
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise PeerError(f"time {value!r}: expected ISO 8601 or epoch seconds") from None
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    else:
        return None
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _list(value) -> list:
    return value.tolist() if hasattr(value, "tolist") else list(value) if isinstance(value, (list, tuple)) else []


# --- Chatbot Arena ------------------------------------------------------------------------

ARENA_WINNERS = {"model_a": "a", "model_b": "b", "tie": "tie", "tie (bothbad)": "both_bad", "both_bad": "both_bad"}


def _arena_detect(record: dict) -> bool:
    return {"model_a", "model_b", "winner", "conversation_a", "conversation_b"} <= set(record)


def _arena_split(messages, side: str) -> tuple[list[dict], list[dict]]:
    """(prompt messages up to the first assistant turn, the rest) of one conversation."""
    messages = _list(messages)
    ok = messages and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages)
    first = next((i for i, m in enumerate(messages) if ok and m.get("role") == "assistant"), None)
    if not ok or not first:
        raise PeerError(f"conversation_{side}: expected user turns, then the assistant's reply "
                        "(a list of {'role', 'content'})")
    return messages[:first], messages[first:]


def _arena_read(record: dict, where: str) -> list[Judgement]:
    choice = ARENA_WINNERS.get(record["winner"])
    if choice is None:
        raise PeerError(f"winner: expected one of {', '.join(ARENA_WINNERS)}, got {record['winner']!r}")
    prompt, reply_a = _arena_split(record["conversation_a"], "a")
    _, reply_b = _arena_split(record["conversation_b"], "b")
    reply = lambda msgs: msgs[0]["content"] if len(msgs) == 1 else transcript(msgs)  # noqa: E731
    judge = record.get("judge")
    qid = record.get("question_id")
    return [Judgement("arena", _text(transcript(prompt), "conversation_a prompt"),
                      (_text(reply(reply_a), "conversation_a reply"), _text(reply(reply_b), "conversation_b reply")),
                      choice, f"arena:{judge}" if judge else "arena", where,
                      task_id=f"arena-{qid}" if qid not in (None, "") else None, created_at=_iso(record.get("tstamp")),
                      meta={"model_a": record["model_a"], "model_b": record["model_b"]})]


# --- Argilla ------------------------------------------------------------------------------
# v2 (`records.to_datasets()`, `to_list(flatten=True)`, Hub exports): "<question>.responses",
# "<question>.responses.users" and "<question>.responses.status" columns, one entry per user.
# v1 (FeedbackDataset on the Hub): a "<question>" column of [{"user_id", "value", "status"}].

ARGILLA_RESERVED = {"id", "status", "_server_id", "external_id", "metadata", "inserted_at", "updated_at"}


def _argilla_v1_questions(record: dict) -> list[str]:
    return [k for k, v in record.items() if isinstance(v, (list, tuple)) and v and
            all(isinstance(x, dict) and {"user_id", "value"} <= set(x) for x in v)]


def _argilla_detect(record: dict) -> bool:
    return any(k.endswith(".responses") for k in record) or bool(_argilla_v1_questions(record))


def _argilla_answers(record: dict) -> list[tuple[str, str, object, str | None]]:
    """(question, user, value, status) for every response, v1 or v2."""
    out = []
    for key in [k for k in record if k.endswith(".responses")]:
        values, users = _list(record[key]), _list(record.get(f"{key}.users"))
        statuses = _list(record.get(f"{key}.status")) or [None] * len(values)
        out += [(key[:-len(".responses")], str(u), v, s) for v, u, s in zip(values, users, statuses)]
    for key in _argilla_v1_questions(record):
        out += [(key, str(x["user_id"]), x["value"], x.get("status")) for x in record[key]]
    return out


def _argilla_fields(record: dict) -> tuple[str, tuple[str, str]]:
    """(prompt field, the two response fields) among the record's text fields."""
    texts = [k for k, v in record.items() if isinstance(v, str) and k not in ARGILLA_RESERVED
             and "." not in k and not k.endswith(("-suggestion", "-suggestion-metadata"))]
    prompt = next((f for f in PROMPT_FIELDS if f in texts), None)
    rest = tuple(k for k in texts if k != prompt)
    if prompt is None or len(rest) != 2:
        raise PeerError(f"expected a prompt field ({', '.join(PROMPT_FIELDS)}) and two response fields, "
                        f"got text fields {texts}")
    return prompt, rest


def _argilla_choice(value, names: tuple[str, str]) -> str | None:
    """A label ("response1", "tie", ...) or a ranking (v2: field names best first; v1: [{rank, value}])."""
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        ranked = _list(value)
        if ranked and isinstance(ranked[0], dict):  # v1: equal ranks are a tie
            ranked = sorted(ranked, key=lambda x: x["rank"])
            if len(ranked) > 1 and ranked[0]["rank"] == ranked[1]["rank"]:
                return "tie"
            ranked = [x["value"] for x in ranked]
        return verdict(ranked[0], names) if ranked else None
    return verdict(value, names)


def _argilla_read(record: dict, where: str) -> list[Judgement]:
    prompt, names = _argilla_fields(record)
    out = []
    for question, user, value, status in _argilla_answers(record):
        if status not in (None, "submitted"):
            continue  # drafts and discarded responses are not verdicts
        choice = _argilla_choice(value, names)
        if choice is None:
            raise PeerError(f"{question}: {value!r} names neither response field ({', '.join(names)}) "
                            "nor a tie / both-bad label")
        rid = record.get("id") or record.get("external_id")
        out.append(Judgement("argilla", _text(record[prompt], prompt),
                             (_text(record[names[0]], names[0]), _text(record[names[1]], names[1])),
                             choice, f"argilla:{user}", where, task_id=f"argilla-{rid}" if rid else None,
                             meta={"question": question}))
    return out


# --- Label Studio -------------------------------------------------------------------------
# The JSON export: [{"id", "data": {...}, "annotations": [{"completed_by", "result": [...],
# "was_cancelled", "created_at", "lead_time"}]}]. A Pairwise tag's result is
# {"type": "pairwise", "to_name": "answer1,answer2", "value": {"selected": "left" | "right"}};
# a Choices result whose choice is a tie / both-bad word says no response won.

def _labelstudio_detect(record: dict) -> bool:
    return isinstance(record.get("data"), dict) and "annotations" in record


def _labelstudio_fields(data: dict, results: list[dict]) -> tuple[str, tuple[str, str]]:
    named = next((tuple(r["to_name"].split(",")) for r in results
                  if r.get("type") == "pairwise" and isinstance(r.get("to_name"), str)), None)
    candidates = ([named] if named and len(named) == 2 else []) + list(RESPONSE_FIELDS)
    names = next((pair for pair in candidates if all(isinstance(data.get(k), str) for k in pair)), None)
    prompt = next((f for f in PROMPT_FIELDS if isinstance(data.get(f), str) and f not in (names or ())), None)
    if names is None or prompt is None:
        raise PeerError(f"data: expected a prompt ({', '.join(PROMPT_FIELDS)}) and two responses "
                        f"(e.g. answer1/answer2, text1/text2), got keys {sorted(data)}")
    return prompt, names


def _labelstudio_choice(results: list[dict]) -> str | None:
    for r in results:
        value = r.get("value") or {}
        if r.get("type") == "pairwise" and value.get("selected") in ("left", "right"):
            return "a" if value["selected"] == "left" else "b"
        for word in value.get("choices") or []:
            found = verdict(word)
            if found in ("tie", "both_bad"):
                return found
    return None


def _labelstudio_read(record: dict, where: str) -> list[Judgement]:
    out = []
    annotations = [a for a in _list(record["annotations"]) if not a.get("was_cancelled")]
    for a in annotations:
        results = _list(a.get("result"))
        choice = _labelstudio_choice(results)
        if choice is None:
            continue  # an annotation without a pairwise verdict (e.g. only a comment)
        prompt, names = _labelstudio_fields(record["data"], results)
        user = a.get("completed_by")
        user = user.get("email") or user.get("id") if isinstance(user, dict) else user
        out.append(Judgement("labelstudio", _text(record["data"][prompt], f"data.{prompt}"),
                             tuple(_text(record["data"][k], f"data.{k}") for k in names), choice,
                             f"labelstudio:{user}", where,
                             task_id=f"labelstudio-{record['id']}" if record.get("id") is not None else None,
                             created_at=_iso(a.get("created_at")),
                             seconds=float(a["lead_time"]) if isinstance(a.get("lead_time"), (int, float)) else None))
    return out


# --- the registry and its uses -------------------------------------------------------------

@dataclass(frozen=True)
class PeerFormat:
    detect: Callable[[dict], bool]
    read: Callable[[dict, str], list[Judgement]]


PEER_FORMATS: dict[str, PeerFormat] = {
    "arena": PeerFormat(_arena_detect, _arena_read),
    "argilla": PeerFormat(_argilla_detect, _argilla_read),
    "labelstudio": PeerFormat(_labelstudio_detect, _labelstudio_read),
}


def peer_format(record) -> str | None:
    """The PEER_FORMATS name of a record, or None for anything else."""
    if not isinstance(record, dict):
        return None
    return next((name for name, fmt in PEER_FORMATS.items() if fmt.detect(record)), None)


def judgements_from_rows(rows: Iterable[tuple[str, dict]], source: str = "data") -> list[Judgement]:
    """(where, record) pairs of one peer format (that of the first) -> Judgements.

    Raises one ValueError listing every bad record ("nothing imported")."""
    rows = list(rows)
    name = peer_format(rows[0][1]) if rows else None
    if name is None:
        raise ValueError(f"{source}: not a Chatbot Arena, Argilla or Label Studio export")
    from labeling.limits import check_name

    out, errors = [], []
    for where, record in rows:
        try:
            found = PEER_FORMATS[name].read(record, where)
            for j in found:
                check_name(j.annotator, "annotator")
            out += found
        except (PeerError, ValueError) as e:
            errors.append(f"{where}: {e}")
        except (KeyError, TypeError, AttributeError) as e:
            errors.append(f"{where}: not a {name} record ({type(e).__name__}: {e})")
    if errors:
        raise ValueError(f"{len(errors)} problem(s) in {source} ({name} format), nothing imported:\n"
                         + "\n".join(errors))
    if not out:
        raise ValueError(f"{source} ({name} format): no verdicts in it (all cancelled, draft or discarded?)")
    return out


def preference_rows(judgements: Iterable[Judgement]) -> list[dict]:
    """rm.data's explicit schema, one row per verdict: a win is chosen/rejected with margin 0
    (peers give no strength); a tie or both-bad verdict is kept with tie=True."""
    rows = []
    for j in judgements:
        a, b = j.responses
        chosen, rejected = (b, a) if j.choice == "b" else (a, b)
        rows.append({"prompt": j.prompt, "chosen": chosen, "rejected": rejected, "margin": 0.0,
                     "tie": j.choice in ("tie", "both_bad"), "both_bad": j.choice == "both_bad"})
    return rows


# --- reading whole sources -----------------------------------------------------------------

def _records(src: str | Path, split: str) -> list[tuple[str, dict]]:
    """(where, record) of a JSON array / JSONL / Parquet file, a dataset folder or a Hub id."""
    path = Path(src)
    if path.is_file():
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return [(f"{path.name} row {i}", r) for i, r in enumerate(pq.read_table(path).to_pylist(), 1)]
        text = path.read_text(encoding="utf-8-sig")
        if text.lstrip().startswith("["):
            return [(f"{path.name} item {i}", r) for i, r in enumerate(json.loads(text), 1)]
        return [(f"{path.name} line {i}", json.loads(line)) for i, line in enumerate(text.splitlines(), 1)
                if line.strip()]
    from labeling.tasks import open_dataset  # refuses files outside a saved folder

    ds = open_dataset(src, split)
    return [(f"{src} [{split}] row {i}", r) for i, r in enumerate(ds, 1)]


@dataclass
class PeerData:
    """A peer source's verdicts, and its format."""

    format: str
    judgements: list[Judgement]


def _first_record(src: str | Path) -> dict | None:
    """The first record of a JSON/JSONL file without reading the rest of a JSONL file."""
    path = Path(src)
    if path.suffix.lower() not in (".json", ".jsonl") or not path.is_file():
        return None
    try:  # not UTF-8, not JSON, nested too deeply: not a peer's; the task reader says why
        with path.open(encoding="utf-8-sig") as f:
            first = f.readline()
        return json.loads(first) if not first.lstrip().startswith("[") else None
    except (ValueError, RecursionError):
        return None


def read_peer(src: str | Path, split: str = "train") -> PeerData | None:
    """All verdicts of a peer export (a JSON/JSONL/Parquet file, a dataset folder or a Hub id),
    or None when `src` is not one (its first record decides; a JSONL file is not read further)."""
    path = Path(src)
    if path.is_file() and path.suffix.lower() not in (".json", ".jsonl", ".parquet"):
        return None
    if not path.exists() and path.suffix:  # a missing file: the task reader says so
        return None
    first = _first_record(path)
    if first is not None and peer_format(first) is None:
        return None
    try:
        rows = _records(src, split)
    except (OSError, ValueError, LookupError, RecursionError):
        return None  # unreadable here (not JSON, no such dataset or split): the task reader reports it
    if not rows or peer_format(rows[0][1]) is None:
        return None
    judgements = judgements_from_rows(rows, str(src))
    return PeerData(judgements[0].source, judgements)


def task_id_of(j: Judgement) -> str:
    """The store id of a verdict's task: the peer's own id, else the content id of a pair task."""
    from labeling.tasks import content_id

    return j.task_id or content_id("pair", j.prompt, j.responses)


def pair_tasks(judgements: Iterable[Judgement]) -> list:
    """One validated `pair` task per judged pair, in order; the limits of labeling.tasks apply."""
    from labeling.tasks import validate_rows

    records = {}
    for j in judgements:
        records.setdefault(task_id_of(j), (j.where, {
            "id": task_id_of(j), "kind": "pair", "prompt": j.prompt, "responses": list(j.responses),
            "meta": {"source": j.source, **j.meta}}))
    return validate_rows(records.values(), source="peer export")


def import_peer(store, peer: PeerData) -> dict[str, int]:
    """Store the tasks and the verdicts as labels, in one transaction; a repeat import adds
    nothing. A verdict is a label by its annotator with the responses shown a-left, b-right
    (choice left / right / tie / both_bad); a win gets the default strength ("clearly"), as the
    peers record none. Returns {"tasks": new tasks, "labels": new labels, "present": labels
    already in the store}."""
    import sqlalchemy as sa

    from labeling.store import CHOICES as STORE_CHOICES, LIVE, assignments_t, labels_t
    from labeling.vocab import CHOICES as API_CHOICES, DEFAULT_STRENGTH, MARGINS, STRENGTHS

    tasks = pair_tasks(peer.judgements)
    strength = STRENGTHS[DEFAULT_STRENGTH]
    to_store = {"a": API_CHOICES["A"], "b": API_CHOICES["B"], "tie": "tie", "both_bad": "both_bad"}
    cap = store.config.cap("pair")
    now = _iso(datetime.now(timezone.utc).timestamp())
    a = assignments_t.c
    with store._write() as conn:  # noqa: SLF001 - tasks and labels in one transaction
        new_tasks = store._import(conn, tasks)  # noqa: SLF001
        held = {t.id: set() for t in tasks}  # slots of live assignments, per task
        done = set()  # (task id, annotator) already labelled
        ids = list(held)
        for start in range(0, len(ids), 500):
            for row in conn.execute(sa.select(a.task_id, a.annotator, a.slot, a.status)
                                    .where(a.task_id.in_(ids[start:start + 500]), a.pair_index == 0)):
                done.add((row.task_id, row.annotator))
                if row.status in LIVE and row.slot is not None:
                    held[row.task_id].add(row.slot)
        added = 0
        for j in peer.judgements:
            task_id = task_id_of(j)
            if (task_id, j.annotator) in done:
                continue
            done.add((task_id, j.annotator))
            slot = next((s for s in range(cap) if s not in held[task_id]), None) if cap else None
            held[task_id].add(slot)
            when = j.created_at or now
            assignment = conn.execute(sa.insert(assignments_t).values(
                task_id=task_id, pair_index=0, annotator=j.annotator, left_index=0, right_index=1,
                shown_order="ab", slot=slot, status="done", created_at=when, served_at=when,
                finished_at=when).returning(a.id)).scalar_one()
            choice = to_store[j.choice]
            winner, loser = STORE_CHOICES[choice](0, 1)
            conn.execute(sa.insert(labels_t).values(
                assignment_id=assignment, choice=choice, strength=strength,
                margin=MARGINS[strength] if winner is not None else 0.0, winner=winner, loser=loser,
                rationale="", tags=[], seconds=j.seconds, created_at=when))
            added += 1
    return {"tasks": new_tasks, "labels": added, "present": len(peer.judgements) - added}
