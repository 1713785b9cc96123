"""The errors the service raises, each with the HTTP status and protocol code a client receives.

Messages are ours: upstream error text is never passed on, because it can quote the caller's key
(OpenAI's 401) or the prompt (content-filter details).
"""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str) -> dict[str, Any]:
    """The protocol's error object; every error a client sees is built here."""
    return {"error": {"code": code, "message": message}}


class ChatError(Exception):
    """An error a client may see: ``status`` before the first byte, ``code`` and ``message``."""

    status: int = 500
    code: str = "internal_error"
    message: str = "The server failed to answer; try again later."
    retryable: bool = False

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        if message is not None:
            self.message = message
        self.retry_after = retry_after
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


class InvalidRequest(ChatError):
    status = 422
    code = "invalid_request"


class InvalidJson(ChatError):
    status = 400
    code = "invalid_json"
    message = "The request body is not valid JSON."


class UnsupportedMediaType(ChatError):
    status = 415
    code = "unsupported_media_type"
    message = "The request body must be JSON, sent with Content-Type: application/json."


class BodyTooLarge(ChatError):
    status = 413
    code = "body_too_large"


class Overloaded(ChatError):
    status = 503
    code = "overloaded"
    message = "The server is busy; retry after the time in Retry-After."


class RateLimited(ChatError):
    status = 429
    code = "rate_limited"
    message = "The model provider is rate limiting requests; retry after the time in Retry-After."
    retryable = True


class UpstreamUnavailable(ChatError):
    status = 502
    code = "upstream_error"
    message = "The model provider failed to answer."
    retryable = True


class UpstreamUnreachable(UpstreamUnavailable):
    code = "upstream_unreachable"
    message = "The model provider could not be reached."


class UpstreamIncomplete(ChatError):
    status = 502
    code = "upstream_incomplete"
    message = "The model provider ended the answer before it was complete."


class UpstreamTimeout(ChatError):
    status = 504
    code = "upstream_timeout"
    message = "The model provider did not answer in time."


class UpstreamAuthFailed(ChatError):
    status = 502
    code = "upstream_auth_failed"
    message = (
        "The model provider rejected the server's credentials; check the configured API key "
        "or the identity's role assignment."
    )


class UpstreamForbidden(ChatError):
    status = 502
    code = "upstream_forbidden"
    message = (
        "The model provider refused access; check that the identity has the "
        "'Cognitive Services OpenAI User' role or that the key belongs to this resource."
    )


class UpstreamModelNotFound(ChatError):
    status = 502
    code = "upstream_model_not_found"
    message = "The model provider does not know the configured model or deployment name."


class UpstreamRejected(ChatError):
    status = 400
    code = "upstream_rejected"
    message = (
        "The model provider rejected the request (for example the conversation is longer "
        "than the model's context, or an option is not supported by this model)."
    )


class ContentFiltered(ChatError):
    status = 400
    code = "content_filter"
    message = "The request was blocked by the model provider's content filter."


class Unauthorized(ChatError):
    status = 401
    code = "unauthorized"
    message = "A valid API key is required: send it as 'Authorization: Bearer <key>'."


class CallerRateLimited(ChatError):
    """The caller's own request or token budget is spent (not the upstream's 429)."""

    status = 429
    code = "rate_limited"
    message = "This caller is over its rate limit; retry after the time in Retry-After."


class RateLimitUnavailable(ChatError):
    status = 503
    code = "rate_limit_unavailable"
    message = "The rate limit store cannot be reached; retry after the time in Retry-After."


class ShuttingDown(ChatError):
    status = 503
    code = "shutting_down"
    message = "The server is shutting down; retry the request."
    retryable = True


class NotReady(ChatError):
    status = 503
    code = "not_ready"
    message = "The model provider is not ready."


class NotFound(ChatError):
    status = 404
    code = "not_found"
    message = "No such resource."


class ConversationBusy(ChatError):
    status = 409
    code = "conversation_busy"
    message = "The conversation's previous answer is still being written; retry when it is done."


class ContextTooLong(ChatError):
    status = 400
    code = "context_too_long"
    message = "The new message alone is longer than the model's context budget."
