"""uvicorn's httptools protocol with the limits httptools lacks: header size, header count, and a
deadline for reading each request.

httptools buffers a header of any size and any number of headers, and uvicorn waits for a request
that arrives slowly for as long as the client likes. Here a request head larger than
``HTTP_MAX_HEADER_BYTES`` (or one line, the request line included, larger than
``HTTP_MAX_HEADER_LINE_BYTES``) or with more than ``HTTP_MAX_HEADERS`` headers is answered ``431``
(``414`` for the URL) without reaching the app, and a request whose head and body have not arrived
``HTTP_READ_TIMEOUT`` seconds after it began (or after the connection opened, or after bytes
that begin no request, such as blank lines, arrived on an idle kept-alive connection) is answered
``408``. A pipelined request's deadline waits while an earlier request on the connection is still
being answered. Each answer is the protocol's error object, then the connection is closed.

``python -m chatbackend`` and the gunicorn worker both serve with ``protocol_class(settings)``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from chatbackend.errors import error_body
from chatbackend.requestlog import READ_TIMEOUT_EXTENSION, log_refused
from chatbackend.settings import Settings

# Per line: name, ": ", value, CRLF.
_LINE_OVERHEAD = 4


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_header_bytes: int
    max_header_line_bytes: int
    max_headers: int
    read_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.http_max_header_bytes,
            max_header_line_bytes=settings.http_max_header_line_bytes,
            max_headers=settings.http_max_headers,
            read_timeout=settings.http_read_timeout,
        )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[HttpLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._in_message = False  # from a request's first byte until its body is whole
        self._reading_head = False
        self._unparsed_head = 0  # bytes fed while the head was still incomplete
        self._head_bytes = 0
        self._header_count = 0
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._refused:
            return
        if self._reading_head:
            # httptools keeps an unfinished header in memory: bound what it may hold.
            self._unparsed_head += len(data)
            if self._unparsed_head > self.limits.max_header_bytes:
                self._refuse(431, "headers_too_large", self._too_large_message())
        elif not self._in_message and self._idle():
            # Bytes that begin no request (blank lines) cancelled uvicorn's keep-alive timer.
            self._arm()

    # Parser callbacks. Once refused, the rest of the bytes already received are parsed (uvicorn's
    # 400 for a callback error would be a second answer) and ignored.
    def on_message_begin(self) -> None:
        if self._refused:
            return
        super().on_message_begin()
        self._in_message = self._reading_head = True
        self._unparsed_head = self._head_bytes = self._header_count = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if self._refused:
            return
        super().on_url(url)
        self._head_bytes += len(url)
        if len(self.url) > self.limits.max_header_line_bytes:
            message = f"The URL is longer than {self.limits.max_header_line_bytes} bytes."
            self._refuse(414, "uri_too_long", message)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        line = len(name) + len(value) + _LINE_OVERHEAD
        self._head_bytes += line
        self._header_count += 1
        if line > self.limits.max_header_line_bytes:
            message = f"A header line is longer than {self.limits.max_header_line_bytes} bytes."
        elif self._head_bytes > self.limits.max_header_bytes:
            message = self._too_large_message()
        elif self._header_count > self.limits.max_headers:
            message = f"The request has more than {self.limits.max_headers} headers."
        else:
            super().on_header(name, value)
            return
        self._refuse(431, "headers_too_large", message)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._reading_head = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_message = False
        self._disarm()
        super().on_message_complete()

    # The read deadline
    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.limits.read_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _timed_out(self) -> None:
        self._read_deadline = None
        if self._refused or self.transport.is_closing():
            return
        cycle = self.cycle
        # ``cycle`` is the request being read once its head is whole, else the one before it.
        reading_body = self._in_message and not self._reading_head
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        if answering or self.pipeline or (not reading_body and not self._idle()):
            # An earlier request is still being answered on this connection: look again later.
            self._arm()
            return
        in_app = cycle is not None and reading_body and not cycle.response_complete
        if in_app:
            # The app is waiting for the rest of the body: it sees a disconnect, the client a 408.
            cycle.scope.setdefault("extensions", {})[READ_TIMEOUT_EXTENSION] = {}
            cycle.disconnected = True
            cycle.message_event.set()
        message = f"The request did not arrive within {self.limits.read_timeout:g} seconds."
        self._refuse(408, "request_timeout", message, logged=in_app)

    def _idle(self) -> bool:
        """No request of this connection is in the app or waiting for it."""
        return not self.pipeline and (self.cycle is None or self.cycle.response_complete)

    def _too_large_message(self) -> str:
        return f"The request headers are larger than {self.limits.max_header_bytes} bytes."

    def _refuse(self, status: int, code: str, message: str, *, logged: bool = False) -> None:
        """Answer ``status`` with the protocol's error object and close the connection."""
        self._refused = True
        self._disarm()
        if not logged:
            log_refused(status, code)
        body = json.dumps(error_body(code, message), separators=(",", ":")).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def protocol_class(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's ``http=``, with the limits from ``settings``."""
    limits = HttpLimits.from_settings(settings)
    return type("HttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})
