"""The floor under `bench serve`'s uncached figures: what this machine gives when a request
does nothing but the ranker's own work.

A minimal service on the same stack as ``shelfwise serve`` (uvicorn with uvloop and httptools,
FastAPI, the service's own request and response schemas) answers
``POST /api/v1/recommendations``, driven by the same client at the same rate. Each person's
candidate rows were computed once beforehand by the champion itself (its retrieval stage and
online features, :meth:`TwoStageRecommender.candidate_columns`) and are held as a matrix; a
request only scores them with the champion's LightGBM ranker and returns the top ``k``. No
retrieval, feature fetch, business rules, explanation, audit, cache, tracing or metrics happens
per request, so the real service can only be slower.

Phases (all at the uncached phase's rate):

- ``floor_http``: no scoring at all, the HTTP stack and the schemas alone;
- ``floor_ranker``: the ranker, one process (as ``shelfwise serve`` runs);
- ``floor_ranker_2_workers``: the ranker in two worker processes, one per core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from shelfwise.bench import progress
from shelfwise.serve.schemas import RecommendationRequest, RecommendationResponse

FLOOR_DIR, FLOOR_RANK = "SHELFWISE_FLOOR_DIR", "SHELFWISE_FLOOR_RANK"
PHASES = {"floor_http": (1, False), "floor_ranker": (1, True), "floor_ranker_2_workers": (2, True)}
CHUNK = 50  # persons per candidate computation


def prepare(folder: Path, persons: list[str], out: Path, limit: int) -> dict[str, Any]:
    """Write the champion's ranker and the candidate rows of up to ``limit`` of ``persons``
    to ``out``; what was prepared."""
    from shelfwise.recommend.matrix import rows_of
    from shelfwise.serve.workspace import load_champion, online_store
    from shelfwise.settings import Settings
    from shelfwise.workspace import Workspace

    workspace = Workspace(Settings(workspace=folder))
    try:
        model, version, _ = load_champion(workspace, online_store(workspace))
        booster = None if model is None else model.ranker_.booster
        if model is None or booster is None:
            raise RuntimeError(f"the workspace {folder} has no recommender champion to measure")
        rows = rows_of(model.users_, np.asarray(persons[:limit], dtype=str))
        rows = rows[rows >= 0]
        matrices, skus, offsets = [], [], [0]
        for start in range(0, len(rows), CHUNK):
            columns = model.candidate_columns(rows[start : start + CHUNK])
            matrix = model.ranker_.matrix(columns)
            chunk_skus = columns["sku"].astype(str)
            person = columns["row"]  # grouped by person: the stage's keys are sorted
            starts = np.flatnonzero(np.r_[True, person[1:] != person[:-1]])
            for at in np.split(np.arange(len(person)), starts[1:]):
                matrices.append(matrix[at])
                skus.append(chunk_skus[at])
                offsets.append(offsets[-1] + len(at))
        np.save(out / "rows.npy", np.concatenate(matrices))
        np.save(out / "skus.npy", np.concatenate(skus))
        np.save(out / "offsets.npy", np.asarray(offsets, dtype=np.int64))
        booster.save_model(str(out / "ranker.txt"))
        (out / "version.json").write_text(json.dumps({"version": version}))
    finally:
        workspace.close()
    sizes = np.diff(offsets)
    return {
        "persons": len(sizes),
        "candidates_median": int(np.median(sizes)) if len(sizes) else 0,
        "features": int(matrices[0].shape[1]) if matrices else 0,
    }


def create_app() -> Any:
    """The floor service over what :func:`prepare` wrote (``SHELFWISE_FLOOR_DIR``); with
    ``SHELFWISE_FLOOR_RANK=0`` it answers without scoring."""
    import lightgbm as lgb
    from fastapi import FastAPI

    folder = Path(os.environ[FLOOR_DIR])
    rank = os.environ.get(FLOOR_RANK, "1") == "1"
    rows = np.load(folder / "rows.npy")
    skus = np.load(folder / "skus.npy")
    offsets = np.load(folder / "offsets.npy")
    version = json.loads((folder / "version.json").read_text())["version"]
    booster = lgb.Booster(model_file=str(folder / "ranker.txt"))
    persons = len(offsets) - 1
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "pid": os.getpid()}

    @app.post("/api/v1/recommendations", response_model=RecommendationResponse)
    async def recommendations(body: RecommendationRequest) -> dict[str, Any]:
        which = zlib.crc32(body.subject.encode()) % persons  # each person: a precomputed list
        start, end = offsets[which], offsets[which + 1]
        if rank:
            scores = np.asarray(booster.predict(rows[start:end], num_threads=1))
        else:
            scores = np.linspace(1.0, 0.0, end - start)
        top = np.argsort(-scores, kind="stable")[: body.k]
        return {
            "request_id": uuid.uuid4().hex,
            "person_id": body.subject,
            "items": [
                {
                    "sku": str(skus[start + i]),
                    "rank": place + 1,
                    "score": float(scores[i]),
                    "source": "floor",
                    "explanation": "",
                }
                for place, i in enumerate(top)
            ],
            "model_version": version,
            "variant": "floor",
            "fallback": None,
            "cached": False,
        }

    return app


def run(
    prepared: Path, persons: list[str], rate: float, seconds: float, port: int
) -> dict[str, Any]:
    """Each floor phase's figures, as the driver reports them."""
    from shelfwise.bench.serve import _drive_elsewhere, _stop

    figures = {}
    for phase, (workers, rank) in PHASES.items():
        progress(f"{phase}: {rate:g} requests/s for {seconds:g} s")
        server = _start(prepared, port, workers, rank)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_healthy(base, server, workers)
            figures[phase] = _drive_elsewhere(base, "-", persons, "uncached", rate, seconds, 0)
            figures[phase]["workers"] = workers
        finally:
            _stop(server)
    return figures


def _start(prepared: Path, port: int, workers: int, rank: bool) -> subprocess.Popen[bytes]:
    env = {**os.environ, FLOOR_DIR: str(prepared), FLOOR_RANK: "1" if rank else "0"}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "shelfwise.bench.serve_floor:create_app",
        "--factory",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_healthy(
    base: str, server: subprocess.Popen[bytes], workers: int, limit: float = 120.0
) -> None:
    """Until every worker process has answered /health (each on a new connection)."""
    deadline, answered = time.monotonic() + limit, set()
    while time.monotonic() < deadline:
        if server.poll() is not None:
            error = server.stderr.read().decode()[-2000:] if server.stderr else ""
            raise RuntimeError(f"the floor service stopped before it was ready: {error}")
        try:
            answered.add(httpx.get(f"{base}/health", timeout=2).json()["pid"])
            if len(answered) >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the floor service was not ready within {limit:g} s")
