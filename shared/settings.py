"""Configuration read from ``MAILER_*`` environment variables and ``.env``.

Each service loads only the groups it needs, at start-up (never at import), through
:func:`load_settings`, which turns pydantic's error into one that names the variable.
"""

from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import SettingsError

ENV_CONFIG = SettingsConfigDict(env_prefix="MAILER_", env_file=".env", extra="ignore")
MIN_API_TOKEN_CHARS = 16
_POSTGRES_SCHEMES = frozenset({"postgresql+asyncpg", "postgresql", "postgres"})


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class LogSettings(BaseSettings):
    """How every service writes its log."""

    model_config = ENV_CONFIG

    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = (
        "INFO"
    )
    """Lowest level written, in any case (``info`` is ``INFO``)."""
    log_format: Literal["json", "console"] = "json"
    """``json`` for one JSON object per line, ``console`` for a line meant for people."""


class DatabaseSettings(BaseSettings):
    """Where PostgreSQL is, for every service that touches it."""

    model_config = ENV_CONFIG

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/mailer"
    """URL of the PostgreSQL database; ``postgres://`` and ``postgresql://`` mean asyncpg too."""
    database_pool_size: int = Field(default=10, ge=1)
    """Connections kept open per process."""

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in _POSTGRES_SCHEMES:
            raise ValueError("must be a PostgreSQL URL: postgresql+asyncpg://user@host:port/name")
        return f"postgresql+asyncpg://{rest}"


class BrokerSettings(BaseSettings):
    """Where RabbitMQ is."""

    model_config = ENV_CONFIG

    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    """AMQP URL of RabbitMQ, including the virtual host."""


class HealthSettings(BaseSettings):
    """The ``/healthz`` and ``/readyz`` server of the planner, the senders and the status
    service (the API serves its own on its port)."""

    model_config = ENV_CONFIG

    health_port: int | None = Field(default=None, ge=1, le=65535)
    """Port of the health server; unset, none is started (so that several senders can run on
    one host without choosing a port each)."""
    health_host: str = "127.0.0.1"
    """Address the health server listens on; ``0.0.0.0`` for probes from outside the host."""
    health_check_timeout_s: float = Field(default=2.0, gt=0, le=60)
    """Longest one readiness check may take; a check without an answer by then fails."""
    health_consumer_stall_s: float = Field(default=10.0, gt=0)
    """A consumer counts as lost when messages wait in its queue, it has room for more, and
    none was delivered for this long. Far above a normal gap, which is milliseconds."""


class ApiSettings(BaseSettings):
    """The REST API's own settings."""

    model_config = ENV_CONFIG

    api_token: SecretStr
    """Bearer token every ``/api/v1`` request must carry. Required: there is no safe default."""

    @field_validator("api_token")
    @classmethod
    def _long_enough(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value()) < MIN_API_TOKEN_CHARS:
            raise ValueError(f"must be at least {MIN_API_TOKEN_CHARS} characters")
        return token

    api_host: str = "127.0.0.1"
    """Address the API listens on."""
    api_port: int = Field(default=8000, ge=1, le=65535)
    """Port the API listens on."""


class ProviderSettings(BaseSettings):
    """The SMS provider the senders call."""

    model_config = ENV_CONFIG

    provider_url: str = "https://probe.fbrq.cloud/v1"
    """Base URL of the SMS provider; requests go to ``{provider_url}/send/{msgId}``."""
    provider_token: SecretStr = Field(
        validation_alias=AliasChoices("MAILER_PROVIDER_TOKEN", "TOKEN_SENDER"),
    )
    """JWT for the provider. ``TOKEN_SENDER`` is accepted too, the name older deployments use."""


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def secret_values(*groups: BaseSettings) -> list[str]:
    """Every token, and every password inside a URL, of these settings: what logs redact."""
    found: list[str] = []
    for group in groups:
        for value in group.model_dump().values():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
                found.append(value)
            if isinstance(value, str) and "://" in value:
                password = urlsplit(value).password
                found.extend([password, unquote(password)] if password else [])
    return found


def load_settings(cls: type[SettingsT]) -> SettingsT:
    """Read one settings group, or raise :class:`SettingsError` naming each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        raise SettingsError(_describe(cls, exc)) from None


def _describe(cls: type[BaseSettings], exc: ValidationError) -> str:
    prefix = cls.model_config.get("env_prefix", "")
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = _variable_name(cls, field, prefix)
        if error["type"] == "missing":
            problems.append(f"{variable} is required but not set (environment or .env)")
        else:
            # Only the message, never the input: the value may be a secret.
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{variable} is invalid: {message}")
    return "; ".join(problems)


def _variable_name(cls: type[BaseSettings], field: str, prefix: str) -> str:
    # An aliased field reports its first alias as the location, not its own name.
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else []
        if field == name or field in choices:
            if choices:
                return " or ".join(str(choice) for choice in choices)
            return f"{prefix}{name}".upper()
    return f"{prefix}{field}".upper()
