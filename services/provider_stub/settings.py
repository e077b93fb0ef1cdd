"""The stub's settings (``MAILER_STUB_*``)."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings

from shared.settings import ENV_CONFIG


class StubSettings(BaseSettings):
    """Where the stub listens, which token it accepts, and how much it remembers."""

    model_config = ENV_CONFIG

    stub_host: str = "127.0.0.1"
    """Address the stub listens on."""
    stub_port: int = Field(default=8900, ge=1, le=65535)
    """Port the stub listens on; point ``MAILER_PROVIDER_URL`` at ``http://host:port/v1``."""
    stub_token: SecretStr = Field(
        min_length=1,
        validation_alias=AliasChoices("MAILER_STUB_TOKEN", "MAILER_PROVIDER_TOKEN", "TOKEN_SENDER"),
    )
    """The bearer token the stub accepts; by default the senders' provider token."""
    stub_journal_size: int = Field(default=50_000, ge=1)
    """Newest requests kept in the journal; the summary's counts cover every request."""
    stub_hang_max_s: float = Field(default=300.0, gt=0)
    """A hanging request is dropped after this long if its client has not given up."""
