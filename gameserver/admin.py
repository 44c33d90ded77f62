"""The admin HTTP app (Starlette): health, readiness, metrics and stats of one worker.

Routes: `GET /healthz` (200 while the event loop runs), `GET /readyz` (200 while the
worker accepts sessions, 503 when draining), `GET /metrics` (Prometheus text format),
`GET /stats` (JSON counts). Served on `server.admin_port` by uvicorn on the worker's own
event loop. The operator panel will grow here, on the same interfaces.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .metrics import registry_for, render

if TYPE_CHECKING:
    from .hub import Hub


def build_app(hub: Hub) -> Starlette:
    registry = registry_for(hub)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if hub.accepting:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("draining\n", status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)

    async def stats(request: Request) -> Response:
        data: dict[str, object] = dict(hub.stats())
        data["zones"] = {name: len(z.users) for name, z in hub.zones.items()}
        data["requests"] = dict(hub.counters.requests)
        return JSONResponse(data)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/stats", stats),
    ]
    return Starlette(routes=routes)


class AdminServer(uvicorn.Server):
    """uvicorn on our loop, without taking over the process's signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def admin_server(hub: Hub, host: str, port: int) -> AdminServer:
    config = uvicorn.Config(
        build_app(hub), host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    return AdminServer(config)
