"""What ``mailer up`` and ``mailer demo`` read before they start anything (``MAILER_STACK_*``)."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from shared.settings import ENV_CONFIG


class StackSettings(BaseSettings):
    """Where the stub will listen, which provider token is configured, and how long to wait."""

    model_config = ENV_CONFIG

    api_token: SecretStr | None = None
    """Read only to know whether one is configured: ``mailer demo`` makes one up if not."""
    stub_host: str = "127.0.0.1"
    """Address the stub listens on (the variable ``mailer stub`` reads)."""
    stub_port: int = Field(default=8900, ge=1, le=65535)
    """Port the stub listens on, unless ``--stub-port`` says otherwise."""
    health_host: str = "127.0.0.1"
    """Address the services' health servers listen on (the variable they read); ``mailer up``
    gives each of them a free port of its own there."""
    provider_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("MAILER_PROVIDER_TOKEN", "TOKEN_SENDER")
    )
    """The senders' provider token; with the stub and none configured, a random one is made."""
    stub_token: SecretStr | None = None
    """The token ``mailer stub`` accepts (``make run`` writes one into ``.env``); with the stub,
    the senders are given it as their provider token, so the stub answers the ``.env`` token."""
    stack_ready_timeout_s: float = Field(default=60.0, gt=0)
    """How long the ``/readyz`` of the API and of every other service, and the stub's
    ``/healthz``, may take to answer 200."""
    stack_stop_timeout_s: float = Field(default=30.0, gt=0)
    """How long each service may take to stop after SIGTERM before it is killed; above
    ``MAILER_SENDER_STOP_TIMEOUT_S``, so that senders can drain their in-flight work."""
