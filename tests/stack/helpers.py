"""What the stack tests share: python children, waiting for lines, free ports."""

import asyncio
import sys
import time
from collections.abc import Callable

from services.stack.processes import ChildSpec

# Unbuffered, so that stdout and stderr lines arrive in the order they were written.
PYTHON = [sys.executable, "-u", "-c"]

GRACEFUL = """
import signal, sys, time
def stop(*_):
    print("stopping")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready")
time.sleep(60)
"""

STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready")
time.sleep(60)
"""


def child(name: str, code: str, layer: int = 0) -> ChildSpec:
    """A python child running ``code``."""
    return ChildSpec(name, [*PYTHON, code], layer=layer)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout_s} s")
        await asyncio.sleep(0.02)


HEALTHY = """
import http.server, sys
class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
print("serving")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ok).serve_forever()
"""
"""Answers 200 to every GET on the port given; SIGTERM ends it (exit code -15)."""
