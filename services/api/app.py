"""Wiring of the API: the FastAPI application, its lifespan and its routes."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from services.api.auth import TokenGate, require_token
from services.api.errors import install_error_handlers
from services.api.events import ControlEvents
from services.api.metrics import ObserveRequests, metrics_endpoint
from services.api.routes import clients, health, mailings, stats
from shared.db import create_engine, session_factory
from shared.settings import ApiSettings, BrokerSettings, DatabaseSettings

API_PREFIX = "/api/v1"

DESCRIPTION = """
Clients, mailings and their statistics. Every `/api/v1` route needs
`Authorization: Bearer <MAILER_API_TOKEN>`.

Lists use keyset pagination: pass the `next_cursor` of one page as `cursor` for the next.
Validation errors are 422 and name the field in `loc`; a missing object is 404; a state
conflict is 409 with the reason in `detail`.
"""


def create_app(api: ApiSettings, database: DatabaseSettings, broker: BrokerSettings) -> FastAPI:
    """The API over these settings; the database pool opens and closes with the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.events = ControlEvents(broker.rabbitmq_url.get_secret_value())
        await app.state.events.start()
        yield
        await app.state.events.close()
        await engine.dispose()

    app = FastAPI(
        title="Mailer",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.api_token = api.api_token.get_secret_value()
    app.state.rabbitmq_url = broker.rabbitmq_url.get_secret_value()
    install_error_handlers(app)
    app.add_middleware(TokenGate, prefix=API_PREFIX)
    app.add_middleware(ObserveRequests)  # added last, so it wraps the gate and sees refusals
    protected = [Depends(require_token)]
    for router in (clients.router, mailings.router, stats.router):
        app.include_router(router, prefix=API_PREFIX, dependencies=protected)
    app.include_router(health.router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    return app
