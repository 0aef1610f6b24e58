"""Labeling capacity through HTTP: many annotators against `next_task` / `submit_label`.

Starts `app.py` as a subprocess on a fresh SQLite store of synthetic pair tasks, then drives it
with a light asyncio HTTP client on Gradio's `/gradio_api/call/<name>` routes (gradio_client
burns ~140 ms of CPU per call, so 32 of them in one process would measure the client):

- closed loop: C annotators label as fast as the server answers (labels/s, submit->next ms);
- open loop: 32 annotators each label once every 4 s (8 labels/s offered; submit->next ms);
- one annotator alone (submit->next ms).

"submit->next" is the time from sending a label until the next task is on hand: one
`submit_label` call when it returns the next task, else `submit_label` then `next_task`. Each
annotator keeps one Gradio session (a `session_hash`, as gradio_client and the browser do); the
last row calls without one, as a bare curl would, which makes Gradio build a new session (the
config of every component on the page) per call. A
share of the submits is sent twice (a double click, a retry); afterwards the store is checked:
every acknowledged label is there exactly once.

    python bench/label_load.py [--clients 1 8 32] [--seconds 20] [--tasks 2000]
"""
import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _machine import load_line, machine_line  # noqa: E402

from labeling.store import StoreConfig, open_store  # noqa: E402
from labeling.testing import tiny_tasks  # noqa: E402


class Api:
    """Gradio's two-step call: POST returns an event id, GET streams the result as SSE."""

    def __init__(self, client: httpx.AsyncClient, base: str, session_hash: str | None = None):
        self.client, self.base, self.session_hash = client, base, session_hash

    async def call(self, name: str, *data):
        body = {"data": list(data)} | ({"session_hash": self.session_hash} if self.session_hash else {})
        posted = await self.client.post(f"{self.base}/gradio_api/call/{name}", json=body)
        posted.raise_for_status()
        event = None
        async with self.client.stream("GET", f"{self.base}/gradio_api/call/{name}/{posted.json()['event_id']}") as s:
            async for line in s.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1])
                    if event == "error":
                        raise RuntimeError(f"{name}: {payload}")
                    return payload[0]
        raise RuntimeError(f"{name}: no result")


class Annotator:
    """One scripted annotator with its own HTTP session (as gradio_client keeps one per Client;
    `sessions=False`: none, as a bare curl call); records each acknowledged label and each
    submit->next time."""

    def __init__(self, client: httpx.AsyncClient, base: str, name: str, rng: random.Random, repeat: float,
                 sessions: bool = True):
        self.api = Api(client, base, f"{name}-{rng.getrandbits(48):012x}" if sessions else None)
        self.name, self.rng, self.repeat = name, rng, repeat
        self.task, self.acked, self.latencies = None, {}, []

    async def start(self):
        self.task = await self.api.call("next_task", self.name)

    async def label(self) -> bool:
        """Label the task on hand and get the next; False when there is none."""
        if not self.task or self.task["assignment_id"] is None:
            return False
        start = time.perf_counter()
        args = (self.name, self.task["assignment_id"], self.rng.choice("AB"), "clearly", "", [])
        out = await self.api.call("submit_label", *args)
        if self.rng.random() < self.repeat:  # a double click: must store nothing new
            again = await self.api.call("submit_label", *args)
            assert again["label_id"] == out["label_id"], (out, again)
        nxt = out["next"] if "next" in out else await self.api.call("next_task", self.name)
        self.latencies.append(time.perf_counter() - start)
        self.acked[out["assignment_id"]] = out["label_id"]
        self.task = nxt
        return True


async def closed_loop(base: str, clients: int, seconds: float, repeat: float, tag: str, sessions: bool = True) -> dict:
    limits = httpx.Limits(max_connections=2 * clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        people = [Annotator(client, base, f"{tag}-{i}", random.Random(i), repeat, sessions) for i in range(clients)]
        await asyncio.gather(*(p.start() for p in people))
        stop = time.perf_counter() + seconds

        async def run(p: Annotator):
            while time.perf_counter() < stop and await p.label():
                pass

        start = time.perf_counter()
        await asyncio.gather(*(run(p) for p in people))
        wall = time.perf_counter() - start
    return summary(people, wall)


async def open_loop(base: str, clients: int, period: float, seconds: float, repeat: float, tag: str) -> dict:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=2 * clients + 4)) as client:
        people = [Annotator(client, base, f"{tag}-{i}", random.Random(i), repeat) for i in range(clients)]
        await asyncio.gather(*(p.start() for p in people))

        async def run(p: Annotator, offset: float):
            await asyncio.sleep(offset)  # spread the annotators over one period
            t0 = time.perf_counter()
            for k in range(int(seconds / period)):
                await asyncio.sleep(max(0.0, t0 + k * period - time.perf_counter()))
                if not await p.label():
                    return

        start = time.perf_counter()
        await asyncio.gather(*(run(p, period * i / clients) for i, p in enumerate(people)))
        wall = time.perf_counter() - start
    return summary(people, wall)


def summary(people: list[Annotator], wall: float) -> dict:
    lat = np.array([x for p in people for x in p.latencies]) * 1000
    acked = {(p.name, a): label for p in people for a, label in p.acked.items()}
    return {"labels": len(acked), "labels_per_s": len(acked) / wall,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
            "p95_ms": float(np.percentile(lat, 95)) if len(lat) else None, "acked": acked}


def check_store(db: Path, acked: dict) -> tuple[int, int]:
    """(lost, duplicated): acknowledged labels missing from the store; labels stored twice."""
    store = open_store(db)
    labels = store.labels()
    store.close()
    stored = labels.groupby(["annotator", "assignment_id"]).size()
    lost = sum(1 for key in acked if key not in stored.index)
    return lost, int((stored > 1).sum())


def start_app(db: Path, runs: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "RMLAB_RATE_LIMIT": "off", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--db", str(db), "--runs", str(runs), "--port", str(port)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=5).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not start:\n{log.read_text()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32], help="closed-loop annotator counts")
    parser.add_argument("--seconds", type=float, default=20, help="length of each run")
    parser.add_argument("--tasks", type=int, default=2000, help="synthetic pair tasks in the store")
    parser.add_argument("--repeat", type=float, default=0.05, help="share of submits sent twice")
    parser.add_argument("--port", type=int, default=7871)
    args = parser.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "labels.db"
        store = open_store(db, StoreConfig(seed=0))
        store.import_tasks(tiny_tasks(pairs=args.tasks, triads=0, agreement=0, gold=0))
        store.close()
        proc = start_app(db, Path(tmp) / "runs", args.port, Path(tmp) / "app.log")
        base, acked, rows = f"http://127.0.0.1:{args.port}", {}, []
        try:
            for c in args.clients:
                r = asyncio.run(closed_loop(base, c, args.seconds, args.repeat, f"closed{c}"))
                acked |= r.pop("acked")
                rows.append((f"closed loop, {c} annotator(s)", r))
            r = asyncio.run(open_loop(base, 32, 4.0, args.seconds, args.repeat, "open32"))
            acked |= r.pop("acked")
            rows.append(("open loop, 32 annotators x 1 label / 4 s", r))
            r = asyncio.run(closed_loop(base, 1, args.seconds, args.repeat, "bare", sessions=False))
            acked |= r.pop("acked")
            rows.append(("closed loop, 1 annotator, no session_hash", r))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        lost, duplicated = check_store(db, acked)
    print(f"{'run':<44} {'labels':>7} {'labels/s':>9} {'p50 ms':>8} {'p95 ms':>8}")
    for name, r in rows:
        print(f"{name:<44} {r['labels']:>7} {r['labels_per_s']:>9.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}")
    print(f"store check: {len(acked)} acknowledged labels, {lost} lost, {duplicated} duplicated")
    print(load_line())


if __name__ == "__main__":
    main()
