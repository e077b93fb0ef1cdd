"""``/_stub/*``: shape the behaviour, script outcomes per msgId, read the journal."""

import math
from collections import deque
from dataclasses import asdict, replace
from datetime import datetime
from typing import Annotated, Any

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from services.provider_stub import outcomes
from services.provider_stub.outcomes import Behaviour
from services.provider_stub.provider import STATE, msg_id_of
from shared.logs import get_logger

log = get_logger(__name__)

MAX_SCRIPT_ITEMS = 1000


class BehaviourPatch(BaseModel):
    """``PUT /_stub/behaviour``: omitted keys keep their value."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = Field(default=None, ge=0, le=600_000)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    error_status: int | None = Field(default=None, ge=400, le=599)
    hang_rate: float | None = Field(default=None, ge=0, le=1)
    malformed_rate: float | None = Field(default=None, ge=0, le=1)
    drop_rate: float | None = Field(default=None, ge=0, le=1)
    token: str | None = Field(default=None, min_length=1)


def _script_item(item: str) -> str:
    if not outcomes.is_outcome(item):
        raise ValueError(
            "each item is ok, an HTTP status from 400 to 599, not-json, empty-object, "
            "code-1, code-string-0, hang or drop"
        )
    return item


_SCRIPT = TypeAdapter(
    Annotated[
        list[Annotated[str, AfterValidator(_script_item)]], Field(max_length=MAX_SCRIPT_ITEMS)
    ]
)


async def put_behaviour(request: web.Request) -> web.Response:
    state = request.app[STATE]
    patch = BehaviourPatch.model_validate(await _json(request))
    changes = patch.model_dump(exclude_none=True)
    token = changes.pop("token", None)
    behaviour = replace(state.behaviour, **changes)
    if _fault_total(behaviour) > 1:
        return web.json_response(
            {"detail": "drop_rate + hang_rate + error_rate + malformed_rate must not exceed 1"},
            status=422,
        )
    state.behaviour = behaviour
    if token is not None:
        state.token = token
    # The token is a secret even here: say that it changed, never what it is.
    log.info("stub.behaviour_set", **changes, token_changed=token is not None)
    return web.json_response(asdict(behaviour))


async def put_script(request: web.Request) -> web.Response:
    state = request.app[STATE]
    msg_id = msg_id_of(request.match_info["msg_id"])
    if msg_id is None:
        raise web.HTTPBadRequest(text="msg_id must be an int64")
    items = _SCRIPT.validate_python(await _json(request))
    state.scripts[msg_id] = deque(items)
    log.info("stub.script_set", message_id=msg_id, outcomes=items)
    return web.json_response({"msg_id": msg_id, "script": items})


async def get_journal(request: web.Request) -> web.Response:
    state = request.app[STATE]
    msg_id = request.query.get("msg_id")
    since = request.query.get("since")
    entries = state.journal.entries(
        msg_id=_int_param(msg_id, "msg_id") if msg_id else None,
        since=_instant(since) if since else None,
    )
    return web.json_response([entry.as_json() for entry in entries])


async def get_summary(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].journal.summary())


async def delete_journal(request: web.Request) -> web.Response:
    request.app[STATE].forget()
    log.info("stub.journal_cleared")
    return web.Response(status=204)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def validation_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """A control request with a bad body is a 422 that says what is wrong."""
    try:
        response: web.StreamResponse = await handler(request)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"].removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        return web.json_response({"detail": errors}, status=422)
    return response


def _fault_total(behaviour: Behaviour) -> float:
    # fsum: a plain sum of 0.2, 0.4, 0.3 and 0.1 is 1.0000000000000002, which would refuse
    # rates that add up to exactly 1.
    return math.fsum(
        (behaviour.drop_rate, behaviour.hang_rate, behaviour.error_rate, behaviour.malformed_rate)
    )


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body must be JSON") from None


def _int_param(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def _instant(raw: str) -> float:
    try:
        # An unencoded "+01:00" in a query string arrives as " 01:00".
        value = datetime.fromisoformat(raw.replace(" ", "+"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise web.HTTPBadRequest(text="since must be an ISO 8601 timestamp with an offset")
    return value.timestamp()
