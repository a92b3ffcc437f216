"""The cloud's real app with a pre-serialised static JSON baseline added (benchmarks only).

``uvicorn --factory api_app:make`` runs exactly what ``helmet-cloud serve`` runs
(``create_app()`` under uvicorn, one worker, same middleware) plus
``GET /bench/static/{name}``: bytes read once from ``$BENCH_STATIC_DIR/{name}``
and returned as they are, with no database and no serialisation. The bench
writes there a copy of a real endpoint's answer, so the baseline sends the
same number of bytes through the same stack.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from fastapi import FastAPI, Response

from helmet_cloud.app import create_app


@cache
def _body(name: str) -> bytes:
    return (Path(os.environ["BENCH_STATIC_DIR"]) / Path(name).name).read_bytes()


def make() -> FastAPI:
    app = create_app()

    @app.get("/bench/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return Response(_body(name), media_type="application/json")

    return app
