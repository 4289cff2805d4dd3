"""uvicorn's httptools protocol with a cap on the request line and headers.

h11 refuses a request whose head passes ``h11_max_incomplete_event_size``;
httptools (llhttp) has no such bound: it gathers a header's name and value
until the header ends, and uvicorn's protocol keeps every header it is given.
This subclass bounds the head of each request at :data:`HEADERS_MAX` bytes two
ways: the bytes received while a head is incomplete (so one endless header is
cut off after one more read, not held), and the request line and headers as
parsed. Past the bound the connection gets a 400 and is closed, as uvicorn
does for any malformed request.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Most bytes of request line and headers (h11's default; said here so it is a choice).
HEADERS_MAX = 16 * 1024
_REFUSED = "Request headers too large."


class HeadersTooLarge(Exception):
    """The request line and headers passed :data:`HEADERS_MAX` (raised inside the parser)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` refusing a request head over :data:`HEADERS_MAX` bytes."""

    #: Bytes of the current head: received (while incomplete) and parsed.
    head_received = 0
    head_parsed = 0
    in_body = False

    def data_received(self, data: bytes) -> None:
        if not self.in_body:
            self.head_received += len(data)
        super().data_received(data)
        over = self.head_received > HEADERS_MAX
        if over and not self.in_body and not self.transport.is_closing():
            self.send_400_response(_REFUSED)

    def on_message_begin(self) -> None:
        self.head_parsed = 0
        super().on_message_begin()

    def _count(self, size: int) -> None:
        self.head_parsed += size
        if self.head_parsed > HEADERS_MAX:
            raise HeadersTooLarge  # httptools turns it into HttpParserCallbackError: a 400

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # The name, the value and the ": " and CRLF around them, as h11 counts the head.
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_body, self.head_received = True, 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        super().on_message_complete()
