"""``mailer stub`` as a process: serves, stops on SIGTERM, refuses to start without a token."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.provider_stub.helpers import free_port

MAILER = Path(sys.executable).with_name("mailer")
TOKEN = "process-stub-token-4711"
NEW_TOKEN = "process-stub-rotated-0815"


def _environment(**variables: str) -> dict[str, str]:
    """Nothing from the test run's environment but PATH: no mailer variable leaks in."""
    return {"PATH": os.environ.get("PATH", ""), **variables}


def _wait_healthy(url: str, process: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mailer stub exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)  # not listening yet
    raise AssertionError(f"mailer stub did not serve /healthz within {timeout_s} s")


def test_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(MAILER), "stub"],
        cwd=tmp_path,
        env=_environment(MAILER_STUB_TOKEN=TOKEN, MAILER_STUB_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_healthy(url, process, timeout_s=10)
        body = {"id": 1, "phone": 79001234567, "text": "Hi"}
        auth = {"Authorization": f"Bearer {TOKEN}"}
        sent = httpx.post(f"{url}/v1/send/1", json=body, headers=auth, timeout=5)
        rotated = httpx.put(f"{url}/_stub/behaviour", json={"token": NEW_TOKEN}, timeout=5)

        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert (sent.status_code, sent.json()) == (200, {"code": 0, "message": "OK"})
    assert rotated.status_code == 200
    assert process.returncode == 0, output
    assert "stub.started" in output
    assert "stub.stopped" in output
    assert TOKEN not in output
    assert NEW_TOKEN not in output


def test_without_a_token_exits_2_naming_the_variable(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(MAILER), "stub"],
        cwd=tmp_path,
        env=_environment(MAILER_STUB_PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 2, result.stderr
    assert "MAILER_STUB_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
