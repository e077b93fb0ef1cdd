"""``make bench`` at a small size: the command runs end to end and reports every figure.

No assertion on speed: the machine running the tests decides that. What is checked is that
the run completes, that its JSON has the shape BENCHMARKS.md documents, that the mailing sent
every message, and that each measured figure is there and positive.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.e2e.markdown import RESULTS_END, RESULTS_START, update_benchmarks

CLIENTS = 2_000
RUN_TIMEOUT_S = 300
SERVICES = ("api", "planner", "sender-1", "sender-2", "status", "stub")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    results = tmp_path_factory.mktemp("bench-e2e")
    command = [
        sys.executable, "-m", "bench.e2e", "--scenario", "S1", "--clients", str(CLIENTS),
        "--ceiling-messages", "2000", "--after-requests", "20", "--results-dir", str(results),
        "--no-update-benchmarks", "--wait-quiet-s", "0",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (results / "e2e-latest.md").read_text().startswith("# End-to-end benchmark")
    [path] = results.glob("e2e-*.json")
    figures: dict[str, Any] = json.loads(path.read_text())
    return figures


def test_the_mailing_sends_every_message(run: dict[str, Any]) -> None:
    assert run["failed"] == {}
    [s1] = run["scenarios"]
    assert (s1["scenario"], s1["clients"], s1["overridden"]) == ("S1", CLIENTS, True)
    assert s1["mailing"]["status"] == "finished"
    assert s1["mailing"]["total"] == CLIENTS
    assert s1["checks"] | {"sent": CLIENTS} == {
        "finished": True,
        "all_final": True,
        "finished_before_deadline": True,
        "sent_equals_stub_successes": True,
        "duplicate_successes": 0,
        "sent": CLIENTS,
        "failed": 0,
        "expired": 0,
        "cancelled": 0,
    }
    assert s1["stub"]["requests"] == CLIENTS
    assert s1["stub"]["requests_per_message"] == 1.0


def test_every_figure_is_measured_and_positive(run: dict[str, Any]) -> None:
    [s1] = run["scenarios"]
    throughput = s1["throughput"]
    for key in ("messages_per_s", "stub_messages_per_s", "created_to_finished_s"):
        assert throughput[key] > 0, key
    assert s1["first_request_s"] > 0
    assert s1["materialisation"]["started_to_materialised_s"] > 0
    assert s1["materialisation"]["messages"] == CLIENTS
    assert s1["dispatch"]["messages"] == CLIENTS
    assert s1["dispatch"]["messages_per_busy_s"] > 0
    assert s1["ceiling_ratio"]["of_lower"] > 0
    assert run["ceiling"]["publish_per_s"] > 0
    assert run["ceiling"]["consume_per_s"] > 0
    for name in SERVICES:
        process = s1["processes"][name]
        assert process["cpu_s"] > 0, name
        assert process["rss_peak_mib"] >= process["rss_start_mib"] > 0, name
    for phase in ("during", "after"):
        for route, figures in s1["latency_ms"][phase].items():
            assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"], (phase, route)
    assert run["machine"]["cpus"] > 0
    assert run["commit"]


def test_benchmarks_md_keeps_the_blocks_of_scenarios_not_run(
    run: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "BENCHMARKS.md"
    earlier = "<!-- e2e:S3:start -->\nS3's figures\n<!-- e2e:S3:end -->\n"
    path.write_text(f"intro\n{RESULTS_START}\n{earlier}{RESULTS_END}\nafter\n")
    full_size = {**run, "scenarios": [{**run["scenarios"][0], "overridden": False}]}

    assert update_benchmarks(path, full_size) == ["S1"]

    text = path.read_text()
    assert text.startswith("intro\n")
    assert text.endswith(f"{RESULTS_END}\nafter\n")
    assert earlier in text
    assert "<!-- e2e:S1:start -->\n### S1 — 2,000 clients, stub at 0 ms" in text
    assert text.index("e2e:machine:start") < text.index("e2e:S1:start") < text.index("e2e:S3")
