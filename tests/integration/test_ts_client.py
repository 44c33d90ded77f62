"""The TypeScript client (clients/ts) against a real server, run by Node: login, error
replies, heartbeats past the idle timeout, a drop resumed with the missed events replayed
once and the spin in flight answered once, close. Before it, the build and the
compile-time checks of the generated request types (clients/ts/test/types.ts).

`npm install` and the TypeScript build run on first use (clients/ts/node_modules is not
committed); without Node or network the test fails, unless `CROUPIER_TEST_SKIP_NODE=1`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import msgspec
import pytest

from gameserver.config import LimitsSection

from .conftest import running_server
from .test_casino import casino_server_config

TS_DIR = Path(__file__).resolve().parents[2] / "clients" / "ts"


def _run(cmd: list[str], what: str, timeout: float = 180) -> None:
    try:
        done = subprocess.run(cmd, cwd=TS_DIR, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"{what} failed: {exc} (or set CROUPIER_TEST_SKIP_NODE=1)")
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")


@pytest.fixture(scope="module")
def node() -> str:
    if os.environ.get("CROUPIER_TEST_SKIP_NODE") == "1":
        pytest.skip("CROUPIER_TEST_SKIP_NODE=1")
    exe, npm = shutil.which("node"), shutil.which("npm")
    if exe is None or npm is None:
        pytest.fail(
            "node and npm are needed for the TypeScript client test (or set CROUPIER_TEST_SKIP_NODE=1)"
        )
    if not (TS_DIR / "node_modules" / "typescript").is_dir() or not (TS_DIR / "node_modules" / "ws").is_dir():
        _run([npm, "install", "--no-audit", "--no-fund"], "npm install (clients/ts)")
    _run([npm, "run", "build"], "the TypeScript build (clients/ts)")
    _run([npm, "run", "typecheck"], "the request types' compile-time checks (clients/ts/test/types.ts)")
    return exe


def test_the_typescript_client_logs_in_resumes_after_a_drop_and_closes(tmp_path: Path, node: str) -> None:
    base = casino_server_config(f"sqlite:///{tmp_path}/ts.db")
    limits = LimitsSection(heartbeat_interval=0.5, idle_timeout=2.0)
    with running_server(msgspec.structs.replace(base, limits=limits)) as srv:
        done = subprocess.run(
            [node, "test/scenario.mjs", srv.ws_url], cwd=TS_DIR, capture_output=True, text=True, timeout=60
        )
    lines = done.stdout.splitlines()
    steps = [line[5:] for line in lines if line.startswith("STEP ")]
    assert lines and lines[-1] == "OK", f"{lines[-1:] or done.stderr[-2000:]} after steps {steps}"
    assert steps == ["login", "errors", "heartbeat", "resume", "close"]
