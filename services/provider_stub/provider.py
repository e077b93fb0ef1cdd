"""``POST /v1/send/{msgId}``: the provider's contract (SPEC §4), shaped by the behaviour."""

import asyncio
import json
import re
import secrets
import time
from typing import Any

from aiohttp import web

from services.provider_stub import outcomes
from services.provider_stub.journal import Entry
from services.provider_stub.state import StubState

STATE = web.AppKey("state", StubState)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_BODY_KEYS = frozenset({"id", "phone", "text"})
_OK_BODY = {"code": 0, "message": "OK"}


async def send(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    # To the microsecond, as the journal shows it: a client that passes an entry's
    # received_at back as ``since`` must find that entry again.
    received_at = round(time.time(), 6)
    msg_id = msg_id_of(request.match_info["msg_id"])
    body = _parse(await request.read())
    authorized = _authorized(request, state.token)
    entry = state.journal.receive(received_at, msg_id, body, authorized)
    if not authorized:
        state.journal.settle(entry, outcomes.UNAUTHORIZED, answered=True)
        return web.json_response({"code": 401, "message": "Unauthorized"}, status=401)
    if msg_id is None or not _valid_body(body, msg_id):
        state.journal.settle(entry, outcomes.BAD_REQUEST, answered=True)
        return web.json_response({"code": 400, "message": "Bad Request"}, status=400)
    return await _play(request, state, entry, state.next_outcome(msg_id))


async def _play(
    request: web.Request, state: StubState, entry: Entry, outcome: str
) -> web.StreamResponse:
    entry.outcome = outcome  # shown while the request is still held (latency, hang)
    try:
        if outcome == outcomes.HANG:
            # Held until the client gives up (aiohttp cancels the handler when it goes).
            await asyncio.sleep(state.hang_max_s)
            return _drop(request, state, entry, outcome)
        if state.behaviour.latency_ms:
            await asyncio.sleep(state.behaviour.latency_ms / 1000)
    except asyncio.CancelledError:
        state.journal.settle(entry, outcome, answered=False)
        raise
    if outcome == outcomes.DROP:
        return _drop(request, state, entry, outcome)
    state.journal.settle(entry, outcome, answered=True)
    return _response(outcome)


def _response(outcome: str) -> web.Response:
    if outcome == outcomes.OK:
        return web.json_response(_OK_BODY)
    if outcome == outcomes.NOT_JSON:
        return web.Response(text="<html><body>OK</body></html>", content_type="text/html")
    if outcome == outcomes.EMPTY_OBJECT:
        return web.json_response({})
    if outcome == outcomes.CODE_1:
        return web.json_response({"code": 1, "message": "Internal provider error"})
    if outcome == outcomes.CODE_STRING_0:
        return web.json_response({"code": "0", "message": "OK"})
    status = outcomes.status_of(outcome) or 500
    return web.json_response({"code": status, "message": "Error"}, status=status)


def _drop(request: web.Request, state: StubState, entry: Entry, outcome: str) -> web.Response:
    """Close the connection without a word: the client sees a protocol error."""
    state.journal.settle(entry, outcome, answered=False)
    if request.transport is not None:
        request.transport.close()
    return web.Response()  # never written: the transport is closed


def msg_id_of(raw: str) -> int | None:
    """The path's msgId if it is an int64, else None."""
    if not _INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _parse(raw: bytes) -> Any:
    """The body as JSON; text that is not JSON is kept as text, cut short, for the journal."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:200].decode("utf-8", errors="replace")


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )


def _is_int(value: Any) -> bool:
    # JSON true is a Python bool, which is an int: the contract wants a real integer.
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_body(body: Any, msg_id: int) -> bool:
    """``{"id": <msgId>, "phone": <int>, "text": <str>}`` and nothing else."""
    return (
        isinstance(body, dict)
        and body.keys() == _BODY_KEYS
        and _is_int(body["id"])
        and body["id"] == msg_id
        and _is_int(body["phone"])
        and body["phone"] > 0
        and isinstance(body["text"], str)
    )
