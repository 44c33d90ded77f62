"""Missions: progress from settled rounds, per-period instances, each reward once (TRN-5).

The consumer of `RoundSettled` applies each round to every mission of the zone
(`games.missions.apply_event`: idempotent per round id, counted by settlement time).
Progress is a document `m:<mission>:<account>:<period>` (store table `missions`, owner =
account) whose status is `active`, then `rewarded` once the reward is posted under the
key `mission:<mission>:<account>:<period>`. Progress below the target is staged in memory
and written with the others by the rewards scheduler's next flush (`StagedDocuments`:
one transaction a tick, not one per round), before the player's session moves to another
worker, and at a graceful stop; a hard crash loses the progress of the last tick. The
progress that reaches the target is written at once (with `rewarded = true`) *before*
the reward is posted; a crash in between is healed the next time the mission is read or
progressed (the key makes it once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from games.bonus import SettledRound
from games.missions import Mission, MissionProgress, apply_event, period_key
from persistence import Conflict, Document, PostingKind, transfer
from persistence.staged import StagedDocuments
from protocol import rewards_messages as rm
from protocol.codes import ErrorCode
from protocol.errors import RequestError

from ..domain import MissionCompleted, RoundSettled, mission_event_id
from .service import Ctx, ZoneRewards

if TYPE_CHECKING:
    from .service import Rewards

_enc = msgspec.msgpack.encode


def reward_key(mission: Mission, account: str, period: str) -> str:
    return f"mission:{mission.id}:{account}:{period}"


class Missions:
    def __init__(self, svc: Rewards) -> None:
        self.svc = svc
        #: progress documents of players on this worker (the owner worker is the only writer)
        self.docs = StagedDocuments(svc.stores.missions, "missions")

    def forget(self, account: str) -> None:
        self.docs.forget(account)

    def handlers(self) -> dict[type, Any]:
        return {rm.MissionList: self.listing, rm.MissionProgress: self.progress}

    async def _load(
        self, mission: Mission, account: str, period: str
    ) -> tuple[MissionProgress | None, Document | None]:
        doc = await self.docs.get(f"m:{mission.id}:{account}:{period}", account)
        if doc is None:
            return None, None
        return msgspec.msgpack.decode(doc.body, type=MissionProgress), doc

    async def _reward(
        self,
        zr: ZoneRewards,
        mission: Mission,
        account: str,
        progress: MissionProgress,
        doc: Document,
        player: tuple[int, str],
    ) -> Document:
        """Post the reward of a completed instance (once, by key), mark it rewarded, and
        publish `MissionCompleted` for the leaderboards (`player`: user id and name)."""
        key = reward_key(mission, account, progress.period)
        if mission.reward > 0:
            entries = transfer(zr.house, account, zr.currency, mission.reward, PostingKind.BONUS)
            await self.svc.move(zr, key, entries, account)
        try:
            stored = await self.docs.put(msgspec.structs.replace(doc, status="rewarded"))
        except Conflict:
            return doc  # another writer marked it (and published)
        if mission.points > 0:
            self.svc.hub.events.publish(
                MissionCompleted(
                    event_id=mission_event_id(key),
                    zone=zr.zone,
                    at_ms=self.svc.now(),
                    user_id=player[0],
                    name=player[1],
                    mission=mission.id,
                    points=mission.points,
                )
            )
        return stored

    async def on_round(self, zr: ZoneRewards, account: str, event: RoundSettled) -> None:
        if not zr.cfg.missions:
            return
        settled = SettledRound(
            round_id=event.event_id,
            player=account,
            game_id=event.game,
            category="slots" if event.game in zr.casino.games else "minigames",
            stake=event.stake,
            win=event.win,
            settled_at=event.at_ms,
        )
        for mission in zr.cfg.missions:
            period = period_key(mission, event.at_ms)
            if period is None:
                continue
            progress, doc = await self._load(mission, account, period)
            new, key = apply_event(mission, progress, settled)
            if new is None or new == progress:
                if (
                    progress is not None
                    and doc is not None
                    and progress.rewarded
                    and doc.status != "rewarded"
                ):
                    await self._reward(zr, mission, account, progress, doc, (event.user_id, event.name))
                continue
            changed = Document(
                id=f"m:{mission.id}:{account}:{period}",
                owner=account,
                status="rewarded" if doc is not None and doc.status == "rewarded" else "active",
                body=_enc(new),
            )
            if not new.rewarded or changed.status == "rewarded":
                self.docs.stage(changed)  # progress: written by the next flush
                continue
            stored = await self.docs.put(changed)  # the target reached: durable before the reward
            await self._reward(zr, mission, account, new, stored, (event.user_id, event.name))

    def _find(self, zr: ZoneRewards, name: str) -> Mission:
        mission = next((x for x in zr.cfg.missions if x.id == name), None)
        if mission is None:
            raise RequestError(ErrorCode.MISSION_NOT_FOUND, f"no mission {name!r} in this zone")
        return mission

    async def _view(self, zr: ZoneRewards, mission: Mission, ctx: Ctx, now: int) -> dict[str, Any]:
        account = ctx.account
        period = period_key(mission, now)
        value, status = 0, "inactive" if period is None else "active"
        if period is not None:
            progress, doc = await self._load(mission, account, period)
            if progress is not None and doc is not None:
                value = progress.value
                if progress.rewarded and doc.status != "rewarded":
                    async with self.svc.locked(account):
                        player = (ctx.player.user_id, ctx.player.name)
                        doc = await self._reward(zr, mission, account, progress, doc, player)
                status = "rewarded" if doc.status == "rewarded" else "active"
        ends = mission.ends_at
        if period is not None and mission.period_ms is not None:
            ends = min(ends, mission.starts_at + (int(period) + 1) * mission.period_ms)
        return {
            "mission": mission.id,
            "metric": mission.metric,
            "target": mission.target,
            "reward": mission.reward,
            "points": mission.points,
            "games": list(mission.games),
            "repeatable": mission.period_ms is not None,
            "period": period,
            "period_ends_at": ends if period is not None else None,
            "starts_at": mission.starts_at,
            "ends_at": mission.ends_at,
            "value": value,
            "status": status,
        }

    async def listing(self, zr: ZoneRewards, ctx: Ctx, req: rm.MissionList) -> dict[str, Any]:
        now = self.svc.now()
        views = [await self._view(zr, m, ctx, now) for m in zr.cfg.missions]
        return {"missions": [v for v in views if v["status"] != "inactive"]}

    async def progress(self, zr: ZoneRewards, ctx: Ctx, req: rm.MissionProgress) -> dict[str, Any]:
        mission = self._find(zr, req.mission)
        return await self._view(zr, mission, ctx, self.svc.now())
