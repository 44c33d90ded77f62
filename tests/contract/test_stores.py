"""Non-money stores on every backend: accounts, variables, leaderboards, configs, bans, audit, documents."""

from __future__ import annotations

import msgspec
import pytest

from persistence import (
    Account,
    AuditEntry,
    Ban,
    ConfigDoc,
    ConfigStatus,
    Conflict,
    DocPut,
    Document,
    LeaderboardOp,
    LeaderboardRecord,
    NotFound,
    ProfilePut,
    VarDelete,
    Variable,
    VarPut,
    VarScope,
)
from persistence.base import Backend
from tests.contract.conftest import Harness

NASTY = 'it\'s a "quote" \\ back\nslash \x00 nul ☃ \U0001f3b0'


def test_accounts_create_find_update(harness: Harness) -> None:
    """Accounts are unique by id and by (zone, name); updates keep zone and creation time."""

    async def body(b: Backend) -> None:
        a = await b.accounts.create_account(Account(user_id="u1", zone="casino", name="alice", profile=b"{}"))
        assert a.created_at > 0 and a.updated_at >= a.created_at
        assert await b.accounts.get_account("u1") == a
        assert await b.accounts.find_account("casino", "alice") == a
        assert await b.accounts.find_account("other", "alice") is None
        with pytest.raises(Conflict):
            await b.accounts.create_account(Account(user_id="u1", zone="casino", name="bob"))
        with pytest.raises(Conflict):
            await b.accounts.create_account(Account(user_id="u2", zone="casino", name="alice"))
        await b.accounts.create_account(Account(user_id="u3", zone="other", name="alice"))
        up = await b.accounts.update_account(
            msgspec.structs.replace(a, zone="ignored", status="frozen", profile=b"x")
        )
        assert (up.zone, up.status, up.profile, up.created_at) == ("casino", "frozen", b"x", a.created_at)
        assert await b.accounts.get_account("u1") == up
        with pytest.raises(NotFound):
            await b.accounts.update_account(Account(user_id="zz", zone="casino", name="zed"))

    harness.run(body)


def test_keys_are_case_sensitive_and_any_text_round_trips(harness: Harness) -> None:
    """Ids compare byte for byte ('A' differs from 'a') and quotes, NUL and emoji survive."""

    async def body(b: Backend) -> None:
        await b.accounts.create_account(Account(user_id="A", zone="z", name=NASTY))
        await b.accounts.create_account(Account(user_id="a", zone="z", name="plain"))
        got = await b.accounts.get_account("A")
        assert got is not None and got.name == NASTY
        blob = bytes(range(256))
        await b.variables.put_variables([Variable(scope=VarScope.USER, owner="A", name="bin", value=blob)])
        [v] = await b.variables.load_variables(VarScope.USER, "A")
        assert v.value == blob

    harness.run(body)


def test_variables_upsert_delete_and_scope(harness: Harness) -> None:
    """Persistent variables are keyed by scope, owner and name."""

    async def body(b: Backend) -> None:
        R, U = VarScope.ROOM, VarScope.USER
        await b.variables.put_variables(
            [
                Variable(scope=R, owner="lobby", name="jackpot", value=b"1"),
                Variable(scope=R, owner="lobby", name="theme", value=b"gold"),
                Variable(scope=U, owner="lobby", name="jackpot", value=b"user"),
            ]
        )
        await b.variables.put_variables([Variable(scope=R, owner="lobby", name="jackpot", value=b"2")])
        got = {v.name: v.value for v in await b.variables.load_variables(R, "lobby")}
        assert got == {"jackpot": b"2", "theme": b"gold"}
        await b.variables.delete_variables([(R, "lobby", "theme"), (R, "lobby", "missing")])
        assert [v.name for v in await b.variables.load_variables(R, "lobby")] == ["jackpot"]
        assert [v.value for v in await b.variables.load_variables(U, "lobby")] == [b"user"]
        await b.variables.delete_variables([(R, "lobby", "jackpot")])
        assert await b.variables.load_variables(R, "lobby") == []
        await b.variables.put_variables([Variable(scope=R, owner="lobby", name="theme", value=b"new")])
        assert [v.value for v in await b.variables.load_variables(R, "lobby")] == [b"new"]

    harness.run(body)


def test_write_behind_ops_apply_in_one_call(harness: Harness) -> None:
    """apply_writes handles variable puts and deletes, profiles and document upserts together."""

    async def body(b: Backend) -> None:
        await b.accounts.create_account(Account(user_id="u1", zone="z", name="n"))
        await b.variables.put_variables([Variable(scope=VarScope.USER, owner="u1", name="old", value=b"o")])
        await b.apply_writes(
            [
                VarPut(var=Variable(scope=VarScope.USER, owner="u1", name="level", value=b"7")),
                VarDelete(scope=VarScope.USER, owner="u1", name="old"),
                ProfilePut(user_id="u1", profile=b'{"avatar":3}'),
                DocPut(
                    table="missions", doc=Document(id="m1:u1", owner="u1", status="active", body=b"spins=3")
                ),
            ]
        )
        await b.apply_writes(
            [DocPut(table="missions", doc=Document(id="m1:u1", owner="u1", status="active", body=b"spins=4"))]
        )
        snap = await b.load_user("u1")
        assert snap.account is not None and snap.account.profile == b'{"avatar":3}'
        assert [(v.name, v.value) for v in snap.variables] == [("level", b"7")]
        doc = await b.missions.get("m1:u1")
        assert doc is not None and (doc.body, doc.version) == (b"spins=4", 2)

    harness.run(body)


def rec(
    owner: str, score: int, sub: int = 0, board: str = "weekly", period: str = "2026-W01"
) -> LeaderboardRecord:
    return LeaderboardRecord(board_id=board, period=period, owner_id=owner, score=score, subscore=sub)


def test_leaderboard_operators_and_ranking(harness: Harness) -> None:
    """BEST keeps the best, INCR adds, SET replaces; ties break on subscore then owner id."""

    async def body(b: Backend) -> None:
        lb = b.leaderboards
        await lb.submit_scores([rec("carol", 50), rec("alice", 10), rec("bob", 30)], LeaderboardOp.BEST)
        out = await lb.submit_scores([rec("alice", 5), rec("bob", 60)], LeaderboardOp.BEST)
        assert [r.score for r in out] == [10, 60]
        await lb.submit_scores([rec("alice", 40), rec("alice", 1)], LeaderboardOp.INCR)
        await lb.submit_scores([rec("dave", 51, 1), rec("erin", 51, 1)], LeaderboardOp.SET)
        await lb.submit_scores([rec("zoe", 3)], LeaderboardOp.DECR)
        top = await lb.top("weekly", "2026-W01", limit=10)
        assert [(r.owner_id, r.score) for r in top] == [
            ("bob", 60),
            ("dave", 51),
            ("erin", 51),
            ("alice", 51),
            ("carol", 50),
            ("zoe", -3),
        ]
        assert [r.owner_id for r in await lb.top("weekly", "2026-W01", limit=2, offset=1)] == ["dave", "erin"]
        assert [await lb.rank("weekly", "2026-W01", o) for o in ("bob", "erin", "alice", "zoe")] == [
            1,
            3,
            4,
            6,
        ]
        assert await lb.rank("weekly", "2026-W01", "nobody") is None
        s = await lb.get_score("weekly", "2026-W01", "alice")
        assert s is not None and s.score == 51
        assert await lb.top("weekly", "2026-W02") == []
        assert await lb.delete_period("weekly", "2026-W01") == 6
        assert await lb.top("weekly", "2026-W01") == []

    harness.run(body)


def doc(id: str, version: int, status: ConfigStatus = ConfigStatus.DRAFT, body: bytes = b"{}") -> ConfigDoc:
    return ConfigDoc(kind="game", id=id, version=version, body=body, status=status, author="ops")


def test_configs_are_versioned_and_immutable(harness: Harness) -> None:
    """Versions must follow each other; the latest published one is served; bodies never change."""

    async def body(b: Backend) -> None:
        c = b.configs
        await c.put_config(doc("fruit", 1, ConfigStatus.PUBLISHED, b"v1"))
        await c.put_config(doc("fruit", 2, body=b"v2"))
        with pytest.raises(Conflict):
            await c.put_config(doc("fruit", 2, body=b"other"))
        with pytest.raises(Conflict):
            await c.put_config(doc("fruit", 4))
        await c.put_config(doc("stars", 1, ConfigStatus.PUBLISHED))
        live = await c.get_config("game", "fruit")
        assert live is not None and (live.version, live.body) == (1, b"v1")
        await c.set_config_status("game", "fruit", 2, ConfigStatus.PUBLISHED)
        await c.set_config_status("game", "fruit", 1, ConfigStatus.RETIRED)
        live = await c.get_config("game", "fruit")
        assert live is not None and (live.version, live.body) == (2, b"v2")
        v1 = await c.get_config("game", "fruit", 1)
        assert v1 is not None and v1.status is ConfigStatus.RETIRED and v1.body == b"v1"
        assert [d.version for d in await c.list_versions("game", "fruit")] == [1, 2]
        assert [(d.id, d.version) for d in await c.published("game")] == [("fruit", 2), ("stars", 1)]
        assert await c.get_config("game", "nope") is None
        with pytest.raises(NotFound):
            await c.set_config_status("game", "fruit", 9, ConfigStatus.PUBLISHED)

    harness.run(body)


def test_bans_expire_and_can_be_lifted(harness: Harness) -> None:
    """A ban is active until ``until`` (0 = forever); removing it lifts it."""

    async def body(b: Backend) -> None:
        bl = b.blacklist
        await bl.add_ban(Ban(zone="z", kind="user", value="u1", until=0, reason="fraud"))
        await bl.add_ban(Ban(zone="z", kind="ip", value="10.0.0.1", until=2_000))
        await bl.add_ban(Ban(zone="other", kind="user", value="u1", until=0))
        found = await bl.find_ban("z", "user", "u1", 10**13)
        assert found is not None and found.reason == "fraud"
        assert await bl.find_ban("z", "ip", "10.0.0.1", 1_999) is not None
        assert await bl.find_ban("z", "ip", "10.0.0.1", 2_000) is None
        assert [x.value for x in await bl.list_bans("z")] == ["10.0.0.1", "u1"]
        assert [x.value for x in await bl.list_bans("z", now=5_000)] == ["u1"]
        await bl.add_ban(Ban(zone="z", kind="user", value="u1", until=3_000, reason="appeal"))
        assert await bl.find_ban("z", "user", "u1", 3_001) is None
        assert await bl.remove_ban("z", "ip", "10.0.0.1") and not await bl.remove_ban("z", "ip", "10.0.0.1")

    harness.run(body)


def test_audit_log_is_a_verifiable_hash_chain(harness: Harness) -> None:
    """Entries get consecutive seqs and chained hashes; the chain verifies (AUD-1)."""

    async def body(b: Backend) -> None:
        log = b.audit
        first = await log.append(
            AuditEntry(actor="admin", action="config.publish", target="game/fruit", after=b"v2")
        )
        second = await log.append(AuditEntry(actor="admin", action="ban.add", target="user/u1", reason=NASTY))
        assert (first.seq, second.seq) == (1, 2)
        assert second.prev_hash == first.hash and len(first.hash) == 64
        assert await log.entries() == [first, second]
        assert await log.entries(after_seq=1) == [second]
        assert await log.verify_chain() is None

    harness.run(body)


def test_documents_have_optimistic_versions(harness: Harness) -> None:
    """Each put bumps the version; a conditional put with a stale version is a Conflict."""

    async def body(b: Backend) -> None:
        for store in (b.lotteries, b.bonuses, b.missions, b.referrals):
            d1 = await store.put(Document(id="x1", owner="u1", status="open", body=b"a"), expected_version=0)
            assert d1.version == 1
            with pytest.raises(Conflict):
                await store.put(Document(id="x1", owner="u1", body=b"b"), expected_version=0)
            d2 = await store.put(Document(id="x1", owner="u1", status="done", body=b"b"), expected_version=1)
            assert (d2.version, d2.created_at) == (2, d1.created_at)
            await store.put(Document(id="x2", owner="u1", status="open"))
            await store.put(Document(id="y1", owner="u2", status="open"))
            assert [d.id for d in await store.by_owner("u1")] == ["x1", "x2"]
            assert [d.id for d in await store.by_owner("u1", status="open")] == ["x2"]
            got = await store.get("x1")
            assert got is not None and got.body == b"b"
            assert await store.delete("x2") and not await store.delete("x2")
            assert await store.get("x2") is None
            assert [d.id for d in await store.by_owner("u1")] == ["x1"]  # gone from the listing too
            await store.put(Document(id="x1", owner="u2", status="open"))  # it changes hands
            assert await store.by_owner("u1") == []
            assert [d.id for d in await store.by_owner("u2")] == ["x1", "y1"]

    harness.run(body)


def test_put_many_writes_the_documents_whose_version_matches(harness: Harness) -> None:
    """put_many checks each doc's expected version in one transaction: the matching ones
    are written (version + 1, creation time kept), the stale ones are not, in order."""

    async def body(b: Backend) -> None:
        store = b.missions
        assert await store.put_many([]) == []
        with pytest.raises(ValueError):  # one id twice: nothing is written
            await store.put_many([Document(id="d"), Document(id="d", body=b"2")])
        assert await store.get("d") is None
        old = await store.put(Document(id="m1", owner="u1", status="active", body=b"1"))
        stale = await store.put(Document(id="m2", owner="u1", status="active", body=b"1"))
        await store.put(stale)  # m2 is now at version 2
        got = await store.put_many(
            [
                Document(id="m3", owner="u2", status="active", body=b"new"),  # expects none: 0
                Document(id="m1", owner="u1", status="rewarded", body=b"2", version=old.version),
                Document(id="m2", owner="u1", status="active", body=b"lost", version=stale.version),
                Document(id="m4", owner="u2", body=b"x", version=3),  # expects one that is not there
            ]
        )
        assert [None if d is None else (d.id, d.version) for d in got] == [("m3", 1), ("m1", 2), None, None]
        m1 = await store.get("m1")
        assert m1 is not None and (m1.version, m1.status, m1.body) == (2, "rewarded", b"2")
        assert m1.created_at == old.created_at and got[1] == m1
        m2 = await store.get("m2")
        assert m2 is not None and (m2.version, m2.body) == (2, b"1")  # the stale write did not land
        assert await store.get("m4") is None
        assert got[0] == await store.get("m3")
        assert [d.id for d in await store.by_owner("u2")] == ["m3"]
        many = [Document(id=f"n{i:04}", owner="u3", body=b"%d" % i) for i in range(1200)]  # > one chunk
        assert all(d is not None and d.version == 1 for d in await store.put_many(many))
        again = await store.put_many([msgspec.structs.replace(d, version=1, body=b"v2") for d in many])
        assert all(d is not None and d.version == 2 for d in again)
        assert len(await store.by_owner("u3")) == 1200

    harness.run(body)
