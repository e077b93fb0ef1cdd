"""RabbitMQ virtual hosts of a benchmark's (or a test's) own, made and removed with
``rabbitmqctl``.

A vhost per run keeps the fixed queue names of the topology (``mailer.work`` and the rest)
apart from a stack someone runs on vhost ``/``, and deleting it removes every queue at once.
"""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

CTL_TIMEOUT_S = 60


def rabbitmqctl_path() -> str:
    """``rabbitmqctl``, looked up in sbin too, which a user's PATH may lack."""
    ctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/sbin")
    if ctl is None:
        raise RuntimeError("rabbitmqctl not found: a vhost of its own needs it")
    return ctl


def rabbitmqctl(*args: str) -> str:
    """Run ``rabbitmqctl``; its output."""
    done = subprocess.run(
        [rabbitmqctl_path(), *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=CTL_TIMEOUT_S,
    )
    return done.stdout


@contextmanager
def vhost(server_url: str, name: str) -> Iterator[str]:
    """Create vhost ``name`` for the URL's user; yield its AMQP URL; delete it afterwards."""
    # make_url parses any URL of the form scheme://user:password@host; only the user is read.
    user = make_url(server_url.replace("amqp://", "postgresql://", 1)).username or "guest"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        yield f"{server_url.rstrip('/')}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)
