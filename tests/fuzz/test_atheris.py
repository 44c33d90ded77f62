"""A short bounded atheris run of the session/dispatcher fuzzer (the long run is `make fuzz`)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def test_atheris_finds_no_crash_in_20_seconds(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "atheris_session.py"),
            "-max_total_time=20",
            "-rss_limit_mb=512",
            "-timeout=2",
            f"-dict={HERE / 'session.dict'}",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done" in proc.stderr
