"""The admin HTTP apps (Starlette): one worker's, and the supervisor's over all workers.

Routes: `GET /healthz` (200 while the event loop runs), `GET /readyz` (200 while the
worker accepts sessions, 503 when draining), `GET /metrics` (Prometheus text format),
`GET /stats` (JSON counts), and the operators' back office under `/admin/players/`
(gameserver/backoffice.py; bearer tokens of moderators and admins). Served on
`server.admin_port` by uvicorn on the worker's own event loop.

With several workers the supervisor serves the same routes over every worker of the
node (`build_cluster_app`): counters summed, gauges labelled `worker`, `/stats` summed
with a per-worker list; plus `GET /admin/workers` and `POST /admin/rolling-restart`,
`POST /admin/workers?count=N` and `GET`/`POST /admin/nodes`; the back office's requests are
forwarded to the player's home worker (`Supervisor.office`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from protocol.errors import RequestError
from rooms.roles import Role

from . import auth
from .backoffice import BackOffice
from .config import NodeAddress
from .metrics import registry_for, render

if TYPE_CHECKING:
    from .hub import Hub
    from .supervisor import Supervisor


class _NodeList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    nodes: list[NodeAddress]


#: runs a back-office operation where the player lives: (op, args) -> (status, body)
RunOffice = Callable[[str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]]
#: the operations, their method and path suffix, and the least role they need
_OFFICE = [
    ("player", "GET", "", Role.MODERATOR),
    ("rounds", "GET", "/rounds", Role.MODERATOR),
    ("ledger", "GET", "/ledger", Role.MODERATOR),
    ("rg", "GET", "/rg", Role.MODERATOR),
    ("exclude", "POST", "/exclude", Role.ADMIN),
    ("adjust", "POST", "/adjust", Role.ADMIN),
    ("deposit", "POST", "/deposit", Role.ADMIN),
    ("withdraw", "POST", "/withdraw", Role.ADMIN),
    ("kick", "POST", "/kick", Role.MODERATOR),
    ("ban", "POST", "/ban", Role.MODERATOR),
    ("unban", "POST", "/unban", Role.MODERATOR),
]


def office_routes(secret: str, run: RunOffice) -> list[Route]:
    """`/admin/players/{zone}/{user}...` (gameserver/backoffice.py) for a bearer token of a
    moderator or an admin (money: admins only), signed with the login tokens' secret."""

    def endpoint(op: str, least: Role) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                return JSONResponse(
                    {"error": "unauthorized", "message": "Authorization: Bearer <token>"}, 401
                )
            try:
                claims = auth.verify(secret, token.strip(), time.time())
                role = Role.parse(claims.r)
            except (RequestError, ValueError) as exc:
                return JSONResponse({"error": "unauthorized", "message": str(exc)}, 401)
            if role < least:
                return JSONResponse(
                    {"error": "forbidden", "message": f"{op} needs the role {least.name.lower()}"}, 403
                )
            args: dict[str, Any] = {"actor": claims.n or f"user{claims.u}"}
            if "user" in request.path_params:
                try:
                    args["user"] = int(request.path_params["user"])
                except ValueError:
                    return JSONResponse({"error": "bad_user", "message": "the user id is a number"}, 400)
                args["zone"] = request.path_params["zone"]
            elif "zone" in request.path_params:
                args["zone"] = request.path_params["zone"]
                if "room" in request.path_params:
                    args["room"] = request.path_params["room"]
            args.update(request.query_params)
            if request.method == "POST":
                raw = await request.body()
                try:
                    args["body"] = msgspec.json.decode(raw) if raw else {}
                except msgspec.DecodeError as exc:
                    return JSONResponse({"error": "bad_request", "message": f"bad JSON: {exc}"}, 400)
            status, body = await run(op, args)
            return JSONResponse(body, status_code=status)

        return serve

    return [
        *(
            Route(f"/admin/players/{{zone}}/{{user}}{suffix}", endpoint(op, least), methods=[method])
            for op, method, suffix, least in _OFFICE
        ),
        Route("/admin/audit", endpoint("audit", Role.ADMIN), methods=["GET"]),
        Route("/admin/zones/{zone}/rooms", endpoint("rooms", Role.MODERATOR), methods=["GET"]),
        Route("/admin/zones/{zone}/message", endpoint("message", Role.ADMIN), methods=["POST"]),
        Route(
            "/admin/zones/{zone}/rooms/{room}/close", endpoint("close_room", Role.MODERATOR), methods=["POST"]
        ),
    ]


def build_app(hub: Hub) -> Starlette:
    registry = registry_for(hub)
    office = BackOffice.of(hub)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if hub.accepting:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("draining\n", status_code=503)

    async def metrics(request: Request) -> Response:
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)

    async def stats(request: Request) -> Response:
        return JSONResponse(worker_stats(hub))

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/stats", stats),
        *office_routes(hub.config.auth.secret, office.run),
    ]
    return Starlette(routes=routes)


def worker_stats(hub: Hub) -> dict[str, Any]:
    """`/stats` of one worker: session counts, users per zone, requests by type, and (with
    a casino) spin commits by latency bucket."""
    data: dict[str, Any] = dict(hub.stats())
    data["zones"] = {name: len(z.users) for name, z in hub.zones.items()}
    data["requests"] = dict(hub.counters.requests)
    if hub.casino is not None:
        data["spin_commits_ms"] = hub.casino.stats.commit_histogram()
    return data


# -- the supervisor's app: every worker of the node -----------------------------------------


def _sum_into(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            _sum_into(total.setdefault(key, {}), value)


class ClusterCollector(Collector):
    """Metrics of every worker: counters and histograms summed (with the totals of workers
    that exited, so sums never go down), gauges per worker (label `worker`), plus the
    supervisor's own counters. Filled by `refresh` before each scrape."""

    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.snapshots: list[tuple[str, list[Any]]] = []

    async def refresh(self) -> None:
        sup = self.sup
        live = sup.live()
        answers = await asyncio.gather(*(sup.ask(wp, "metrics") for wp in live))
        self.snapshots = []
        for wp, families in zip(live, answers, strict=True):
            if families is not None:
                wp.last_metrics = families
            if wp.last_metrics:
                self.snapshots.append((wp.slot.member, wp.last_metrics))

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        sums: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = dict(self.sup.retired)
        kinds: dict[str, tuple[str, str]] = {}
        for member, families in self.snapshots:
            for name, kind, doc, samples in families:
                kinds.setdefault(name, (kind, doc))
                if kind in ("counter", "histogram", "summary"):
                    for sname, labels, value in samples:
                        key = (name, sname, tuple(sorted(labels.items())))
                        sums[key] = sums.get(key, 0.0) + float(value)
                else:
                    fam = merged.get(name)
                    if fam is None:
                        fam = merged[name] = Metric(name, doc, kind)
                    for sname, labels, value in samples:
                        fam.add_sample(sname, {**labels, "worker": member}, float(value))
        for (name, sname, labels), value in sorted(sums.items()):
            kind, doc = kinds.get(name, ("counter", ""))
            fam = merged.get(name)
            if fam is None:
                fam = merged[name] = Metric(name, doc, kind)
            fam.add_sample(sname, dict(labels), value)
        yield from merged.values()
        sup = self.sup
        workers = GaugeMetricFamily("croupier_workers", "Worker processes by state", labels=["state"])
        live = sup.live()
        workers.add_metric(["ready"], sum(1 for wp in live if not wp.draining))
        workers.add_metric(["draining"], sum(1 for wp in live if wp.draining))
        yield workers
        gen = GaugeMetricFamily("croupier_worker_generation", "Fencing generation", labels=["worker"])
        for slot in sup.slots:
            if slot.current is not None:
                gen.add_metric([slot.member], slot.current.generation)
        yield gen
        for counter, doc in (
            ("restarts", "Workers restarted after they died or stopped answering"),
            ("superseded", "Workers replaced because they stopped answering"),
            ("handoffs", "Client sockets handed to a worker"),
            ("redirects", "Clients sent to another node (4010)"),
            ("refused", "Client sockets closed: no worker could take them"),
        ):
            yield CounterMetricFamily(f"croupier_supervisor_{counter}", doc, value=sup.counters[counter])
        acceptor = sup.acceptor
        if acceptor is not None:
            yield CounterMetricFamily(
                "croupier_acceptor_accepted", "Client sockets accepted", value=acceptor.accepted
            )
            yield CounterMetricFamily(
                "croupier_acceptor_dropped",
                "Client sockets closed before their first bytes arrived (timeout, EOF)",
                value=acceptor.dropped,
            )


def build_cluster_app(sup: Supervisor) -> Starlette:
    collector = ClusterCollector(sup)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        if sup.ready:
            return PlainTextResponse("ready\n")
        return PlainTextResponse("not ready\n", status_code=503)

    async def metrics(request: Request) -> Response:
        await collector.refresh()
        return Response(render(registry), media_type=CONTENT_TYPE_LATEST)

    async def stats(request: Request) -> Response:
        live = sup.live()
        answers = await asyncio.gather(*(sup.ask(wp, "stats") for wp in live))
        total: dict[str, Any] = {}
        per_worker = []
        for wp, data in zip(live, answers, strict=True):
            if data is None:
                continue
            _sum_into(total, data)
            per_worker.append({"worker": wp.slot.member, "pid": wp.pid, "generation": wp.generation, **data})
        total.setdefault("connections", 0)
        total.setdefault("players", 0)
        total["workers"] = per_worker
        return JSONResponse(total)

    async def workers(request: Request) -> Response:
        if request.method == "POST":  # ?count=N: add or remove workers (docs/sharding.md)
            try:
                count = int(request.query_params.get("count", ""))
            except ValueError:
                return JSONResponse({"started": False, "error": "give ?count=<workers>"}, status_code=400)
            if sup.resize(count):
                return JSONResponse({"started": True, "workers": count}, status_code=202)
            return JSONResponse(
                {"started": False, "error": "busy (resize or rolling restart), same size, or several nodes"},
                status_code=409,
            )
        view = {"rolling_restart": sup.rolling, "resizing": sup.resizing, "workers": sup.workers_view()}
        return JSONResponse(view)

    async def nodes(request: Request) -> Response:
        """GET: the node list; POST {"nodes": [...]}: nodes added at the end or the last
        ones removed (docs/cluster.md, "Adding and removing nodes")."""
        if request.method == "POST":
            try:
                body = msgspec.json.decode(await request.body(), type=_NodeList)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                return JSONResponse({"started": False, "error": f"bad node list: {exc}"}, status_code=400)
            why = sup.set_nodes(body.nodes)
            if why is not None:
                return JSONResponse({"started": False, "error": why}, status_code=409)
            return JSONResponse({"started": True, "nodes": len(body.nodes)}, status_code=202)
        view = {
            "nodes": [msgspec.to_builtins(n) for n in sup.nodes],
            "node_index": sup.node_index,
            "joining": sup.joining,
            "changing": sup.resizing,
        }
        return JSONResponse(view)

    async def rolling_restart(request: Request) -> Response:
        if sup.rolling_restart():
            return JSONResponse({"started": True}, status_code=202)
        return JSONResponse({"started": False, "error": "a rolling restart is running"}, status_code=409)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/stats", stats),
        Route("/admin/workers", workers, methods=["GET", "POST"]),
        Route("/admin/rolling-restart", rolling_restart, methods=["POST"]),
        Route("/admin/nodes", nodes, methods=["GET", "POST"]),
        *office_routes(sup.config.auth.secret, sup.office),
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


def cluster_admin_server(sup: Supervisor, host: str, port: int) -> AdminServer:
    config = uvicorn.Config(
        build_cluster_app(sup), host=host, port=port, log_level="warning", lifespan="off", access_log=False
    )
    return AdminServer(config)
