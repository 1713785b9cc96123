"""Every environment variable the service reads, parsed and validated once.

Nothing else in the package reads ``os.environ``: ``create_app`` builds one ``Settings`` and hands
the parts that are needed to the lifespan and the dependencies.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ProviderName = Literal["azure", "openai", "github", "compatible", "local"]
TelemetryExporter = Literal["otlp", "azure_monitor", "console", "prometheus"]
EmbeddingProviderName = Literal["embedded", "azure", "openai", "compatible"]

GITHUB_MODELS_BASE_URL = "https://models.github.ai/inference"
DEFAULT_GC_THRESHOLD = (100_000, 50, 100)
# Relative to the working directory; the directory is created on start.
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/chatbackend.db"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer clearly and concisely."
# The production image leaves the embedded model out (it serves cloud providers only).
NO_EMBEDDED_MODEL = (
    "CHAT_PROVIDER=local (the default when no provider is configured) needs the embedded model, "
    "which is not installed: configure a provider (e.g. AZURE_OPENAI_ENDPOINT and "
    "AZURE_OPENAI_DEPLOYMENT) or pip install 'chatbackend[local]'"
)


class SettingsError(ValueError):
    """A missing or contradictory setting; the message is one line that names the variable."""


class FallbackProvider(BaseModel):
    """One entry of ``CHAT_FALLBACKS``: a further provider tried when the ones before it fail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["azure", "openai", "github", "compatible"]
    base_url: str | None = None
    endpoint: str | None = None
    model: str | None = None
    deployment: str | None = None
    api_key: SecretStr | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.provider == "azure":
            if not (self.endpoint and self.deployment):
                raise ValueError("an azure fallback needs endpoint and deployment")
        elif not self.model:
            raise ValueError(f"a {self.provider} fallback needs model")
        elif self.provider == "compatible" and not self.base_url:
            raise ValueError("a compatible fallback needs base_url")
        elif self.provider in ("openai", "github") and self.api_key is None:
            raise ValueError(f"a {self.provider} fallback needs api_key")
        return self


class Settings(BaseSettings):
    """The service configuration; field ``foo_bar`` is read from the variable ``FOO_BAR``."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    chat_provider: ProviderName | None = None

    azure_openai_endpoint: str | None = None
    azure_openai_deployment: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_client_id: str | None = None
    # Set: AsyncAzureOpenAI on the deployment path with this api-version; unset: the v1 endpoint.
    azure_openai_api_version: str | None = None

    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4.1-mini"
    openai_base_url: str | None = None

    github_token: SecretStr | None = None
    github_model: str = "openai/gpt-4.1-mini"
    github_models_base_url: str = GITHUB_MODELS_BASE_URL

    chat_base_url: str | None = None
    chat_model: str | None = None
    chat_api_key: SecretStr | None = None

    local_model_path: Path | None = None
    local_threads: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)), ge=1)
    local_max_queue: int = Field(default=8, ge=0)
    local_context_tokens: int = Field(default=2048, ge=256)

    chat_system_prompt: str = DEFAULT_SYSTEM_PROMPT
    chat_max_messages: int = Field(default=50, ge=1)
    chat_max_message_chars: int = Field(default=32_000, ge=1)
    chat_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Answers in flight per worker process; past it a request gets 503 at once, never a queue.
    # Also the size of the upstream connection pool, so every stream reuses a kept-alive one.
    chat_max_streams: int = Field(default=512, ge=1)

    chat_connect_timeout: float = Field(default=5.0, gt=0)
    chat_first_token_timeout: float = Field(default=30.0, gt=0)
    chat_response_timeout: float = Field(default=300.0, gt=0)
    chat_retry_attempts: int = Field(default=3, ge=1, le=10)
    chat_retry_budget_seconds: float = Field(default=10.0, ge=0)
    chat_retry_backoff_seconds: float = Field(default=0.5, ge=0)

    # Conversations: SQLite (default) or PostgreSQL; may hold a password, hence secret.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    database_pool_size: int = Field(default=10, ge=1)
    # Azure Database for PostgreSQL with Microsoft Entra: DATABASE_URL names the role and holds no
    # password; each new connection signs in with a token of the Azure credential (as keyless
    # Azure OpenAI does: AZURE_CLIENT_ID's managed identity, else the azd/az login).
    database_entra_auth: bool = False
    # A conversation's history is cut to this many tokens minus the answer's max_tokens;
    # unset: the embedded model's context (LOCAL_CONTEXT_TOKENS), else 16,000.
    chat_context_tokens: int | None = Field(default=None, ge=256)
    # A turn's lease on its conversation: renewed every third of it while the answer streams,
    # so after a crash the conversation takes turns again this long after at most.
    conversation_lease_seconds: float = Field(default=15.0, ge=0.3, le=3600)
    # Retrieval (issue 15): the embedder, the chunker and the upload limit.
    embedding_provider: EmbeddingProviderName | None = None
    embedding_model: str | None = None
    embedding_dimensions: int | None = Field(default=None, ge=1, le=16_000)
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_batch_size: int = Field(default=64, ge=1, le=2048)
    embedding_cache_size: int = Field(default=10_000, ge=0)
    embedding_threads: int = Field(default_factory=lambda: len(os.sched_getaffinity(0)), ge=1)
    model_cache_dir: Path = Path("data/models")
    chunk_tokens: int = Field(default=400, ge=32, le=8192)
    chunk_overlap_tokens: int = Field(default=60, ge=0)
    documents_max_bytes: int = Field(default=5_000_000, ge=1)

    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    # Enforced by the HTTP protocol both servers run (chatbackend.httpprotocol), before the app.
    http_max_header_bytes: int = Field(default=65_536, ge=1024)
    http_max_header_line_bytes: int = Field(default=16_384, ge=256)
    http_max_headers: int = Field(default=100, ge=1)
    http_read_timeout: float = Field(default=30.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = []
    log_level: str = "INFO"
    # Garbage collection, tuned at start-up by every server (see chatbackend.serving).
    gc_threshold: Annotated[tuple[int, int, int], NoDecode] = DEFAULT_GC_THRESHOLD

    # Telemetry is on when at least one exporter is configured (see ``telemetry_exporters``).
    otel_service_name: str = "chatbackend"
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = "http/protobuf"
    # Off by default, unlike the SDK's "trace_based": exemplars cost CPU on every measurement.
    otel_metrics_exemplar_filter: Literal["always_off", "always_on", "trace_based"] = "always_off"
    applicationinsights_connection_string: SecretStr | None = None
    telemetry_console: bool = False
    metrics_prometheus: bool = False
    telemetry_capture_content: bool = False

    # Access control (chatbackend.access): who may call, and how much.
    auth_mode: Literal["none", "api-key"] = "none"
    docs_enabled: bool = True
    rate_limit_requests_per_minute: int | None = Field(default=None, ge=1)
    rate_limit_tokens_per_minute: int | None = Field(default=None, ge=1)
    # When Redis cannot be reached: admit with a logged warning, or refuse with 503.
    rate_limit_on_storage_error: Literal["open", "closed"] = "open"
    # Further providers, tried in order before the first byte on a retryable failure (JSON).
    chat_fallbacks: list[FallbackProvider] = []
    # How long one provider of a chain may take to its first delta before the next is tried.
    chat_fallback_timeout: float = Field(default=10.0, gt=0)
    # A provider that failed this often within the window is skipped for the cool-down.
    chat_fallback_failures: int = Field(default=3, ge=1)
    chat_fallback_window_seconds: int = Field(default=60, ge=1)
    chat_fallback_cooldown_seconds: int = Field(default=30, ge=1)
    # redis://, rediss:// or unix:// (may carry a password, hence secret); unset or empty: memory.
    redis_url: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    # Azure Managed Redis with Microsoft Entra: tokens of the same Azure credential, renewed and
    # re-sent on every open connection before they expire; REDIS_URL holds no password.
    redis_entra_auth: bool = False
    # Function calling (``chatbackend.tools``): unset = every tool, empty = none.
    chat_tools: Annotated[list[str] | None, NoDecode] = None
    chat_tool_timeout: float = Field(default=10.0, gt=0)
    chat_max_tool_rounds: int = Field(default=5, ge=1, le=20)
    # Batches (POST /batch): items answered at once per caller (per worker process).
    batch_concurrency: int = Field(default=8, ge=1, le=100)
    # The response cache for deterministic requests: off while the TTL is unset; in memory
    # (at most CHAT_CACHE_MAX_ENTRIES answers, least recently used first out) or in Redis.
    chat_cache_ttl_seconds: float | None = Field(default=None, gt=0)
    chat_cache_max_entries: int = Field(default=1000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _split_cors_origins(cls, data: object) -> object:
        if isinstance(data, dict):
            raw = data.get("cors_origins")
            if isinstance(raw, str):
                data = {**data, "cors_origins": [o.strip() for o in raw.split(",") if o.strip()]}
        return data

    @model_validator(mode="before")
    @classmethod
    def _split_chat_tools(cls, data: object) -> object:
        if isinstance(data, dict):
            raw = data.get("chat_tools")
            if isinstance(raw, str):
                data = {**data, "chat_tools": [t.strip() for t in raw.split(",") if t.strip()]}
        return data

    @field_validator("redis_url", mode="before")
    @classmethod
    def _empty_redis_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("gc_threshold", mode="before")
    @classmethod
    def _parse_gc_threshold(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return DEFAULT_GC_THRESHOLD
            parts = value.split(",")
            if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
                raise ValueError("must be three whole numbers like 100000,50,100")
            return tuple(int(part) for part in parts)
        return value

    @model_validator(mode="after")
    def _check_provider(self) -> Self:
        provider = self.provider
        required: dict[ProviderName, tuple[str, ...]] = {
            "azure": ("azure_openai_endpoint", "azure_openai_deployment"),
            "openai": ("openai_api_key",),
            "github": ("github_token",),
            "compatible": ("chat_base_url", "chat_model"),
            "local": (),
        }
        for name in required[provider]:
            if not getattr(self, name):
                raise ValueError(f"{name.upper()} is required when CHAT_PROVIDER={provider}")
        _check_database_url(self.database_url.get_secret_value())
        self._check_entra()
        if self.chat_first_token_timeout > self.chat_response_timeout:
            raise ValueError("CHAT_FIRST_TOKEN_TIMEOUT must not exceed CHAT_RESPONSE_TIMEOUT")
        self._check_embedding()
        if provider == "local" and importlib.util.find_spec("llama_cpp") is None:
            raise ValueError(NO_EMBEDDED_MODEL)
        if provider == "local" and self.local_model_path and not self.local_model_path.is_file():
            raise ValueError(f"LOCAL_MODEL_PATH does not name a file: {self.local_model_path}")
        return self

    def _check_entra(self) -> None:
        from sqlalchemy.engine import make_url

        if self.database_entra_auth:
            url = make_url(self.database_url.get_secret_value())
            if url.get_backend_name() not in ("postgresql", "postgres"):
                raise ValueError("DATABASE_ENTRA_AUTH needs a postgresql:// DATABASE_URL")
            if not url.username or url.password is not None:
                raise ValueError(
                    "DATABASE_ENTRA_AUTH: DATABASE_URL names the role and holds no password"
                )
        if self.redis_entra_auth and self.redis_url is None:
            raise ValueError("REDIS_ENTRA_AUTH needs REDIS_URL")

    def _check_embedding(self) -> None:
        kind = self.embedder
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError("CHUNK_OVERLAP_TOKENS must be less than CHUNK_TOKENS")
        if kind == "embedded":
            return
        for name in ("embedding_model", "embedding_dimensions"):
            if not getattr(self, name):
                raise ValueError(f"{name.upper()} is required when EMBEDDING_PROVIDER={kind}")
        needs = {"azure": "azure_openai_endpoint", "openai": "openai_api_key"}.get(kind)
        if needs and not getattr(self, needs):
            raise ValueError(f"{needs.upper()} is required when EMBEDDING_PROVIDER={kind}")
        if kind == "compatible" and not (self.embedding_base_url or self.chat_base_url):
            raise ValueError("EMBEDDING_BASE_URL is required when EMBEDDING_PROVIDER=compatible")

    @property
    def embedder(self) -> EmbeddingProviderName:
        """``EMBEDDING_PROVIDER``; else the chat provider's service when ``EMBEDDING_MODEL`` is set
        (Azure, OpenAI or a compatible server), else the embedded model."""
        if self.embedding_provider is not None:
            return self.embedding_provider
        provider = self.provider
        if self.embedding_model and provider != "local" and provider != "github":
            return provider
        return "embedded"

    @property
    def telemetry_exporters(self) -> frozenset[TelemetryExporter]:
        """Where traces and metrics go; empty means telemetry is off and no SDK is loaded."""
        configured: dict[TelemetryExporter, object] = {
            "otlp": self.otel_exporter_otlp_endpoint,
            "azure_monitor": self.applicationinsights_connection_string,
            "console": self.telemetry_console,
            "prometheus": self.metrics_prometheus,
        }
        return frozenset(name for name, value in configured.items() if value)

    @property
    def context_tokens(self) -> int:
        if self.chat_context_tokens is not None:
            return self.chat_context_tokens
        return self.local_context_tokens if self.provider == "local" else 16_000

    @property
    def provider(self) -> ProviderName:
        """The provider in use: ``CHAT_PROVIDER``, else inferred from which credentials are set."""
        if self.chat_provider is not None:
            return self.chat_provider
        if self.azure_openai_endpoint:
            return "azure"
        if self.openai_api_key:
            return "openai"
        return "local"


def _check_database_url(url: str) -> None:
    from sqlalchemy.exc import ArgumentError

    from chatbackend.store.database import UnsupportedDatabase, normalise_url

    try:
        normalise_url(url)
    except ArgumentError:
        raise ValueError("DATABASE_URL: not a database URL") from None
    except UnsupportedDatabase as exc:
        raise ValueError(str(exc)) from None


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus ``overrides``), or raise a one-line ``SettingsError``."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(part) for part in first["loc"]).upper()
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid configuration: {field + ': ' if field else ''}{message}"
