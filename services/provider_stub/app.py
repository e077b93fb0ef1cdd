"""Wiring of the stub: the aiohttp application and its routes."""

from aiohttp import web

from services.provider_stub import control, provider
from services.provider_stub.journal import Journal
from services.provider_stub.provider import STATE
from services.provider_stub.settings import StubSettings
from services.provider_stub.state import StubState


def create_app(settings: StubSettings) -> web.Application:
    """The stub over these settings, with an empty journal and the default behaviour."""
    app = web.Application(middlewares=[control.validation_errors])
    app[STATE] = StubState(
        token=settings.stub_token.get_secret_value(),
        journal=Journal(settings.stub_journal_size),
        hang_max_s=settings.stub_hang_max_s,
    )
    app.router.add_post("/v1/send/{msg_id}", provider.send)
    app.router.add_put("/_stub/behaviour", control.put_behaviour)
    app.router.add_put("/_stub/script/{msg_id}", control.put_script)
    app.router.add_get("/_stub/journal", control.get_journal)
    app.router.add_delete("/_stub/journal", control.delete_journal)
    app.router.add_get("/_stub/summary", control.get_summary)
    app.router.add_get("/healthz", control.healthz)
    return app


async def start(settings: StubSettings) -> web.AppRunner:
    """Serve the stub in the running loop; ``await runner.cleanup()`` stops it."""
    # handler_cancellation: a handler is cancelled when its client disconnects, which is how
    # a hanging request learns that the client gave up.
    runner = web.AppRunner(create_app(settings), handler_cancellation=True, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.stub_host, settings.stub_port).start()
    return runner
