"""The exporter's HTTP/1.1 server: what Prometheus and a browser send, on asyncio streams.

Why the standard library's asyncio and not aiohttp: the exporter answers three GET paths with
short bodies to one client that keeps its connection open (Prometheus); asyncio's streams do
that in a page of code, the probes already run on asyncio, and siptool gains no dependency
and no import time.  http.server is thread-per-request and would put the probes on threads.

Decisions:

- GET and HEAD only (RFC 9110 §9.3.1, §9.3.2); anything else is 405 with Allow.
- Keep-alive by default in HTTP/1.1, closed after the answer in 1.0 unless asked
  (RFC 9112 §9.3); a request head over 16 KiB is 431, a malformed one 400 and the connection
  closed; a client idle for 60 s is let go.
- A request body (none is expected) is read by its Content-Length and dropped, up to 64 KiB;
  chunked bodies are refused (400): nothing the exporter serves takes one.
- Every answer has Content-Length; nothing the peer sends reaches a log unescaped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

HEAD_LIMIT = 16 * 1024
BODY_LIMIT = 64 * 1024
IDLE_SECONDS = 60.0
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable",
}  # fmt: skip


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased; a repeated header's last value
    version: str


@dataclass
class Response:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


Handler = Callable[[Request], Awaitable[Response]]


def parse_head(head: bytes) -> Request:
    """A request line and headers (RFC 9112 §3, §5); ``BadRequest`` for anything else."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "request head is not ASCII") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        headers[name.lower()] = value.strip()
    split = urlsplit(target)
    return Request(method, split.path, parse_qs(split.query), headers, version)


def wants_keep_alive(request: Request) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def encode(response: Response, *, head_only: bool, keep_alive: bool) -> bytes:
    body = response.body.encode("utf-8")
    lines = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}"]
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(body)),
        "Connection": "keep-alive" if keep_alive else "close",
        **response.headers,
    }
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if head_only else body)


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """One client connection: requests one after another until it closes or goes idle."""
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_SECONDS)
            except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
                return
            except asyncio.LimitOverrunError:
                await _refuse(writer, 431, "request head over 16 KiB")
                return
            try:
                request = parse_head(head[:-4])
                await _drop_body(reader, request)
            except BadRequest as exc:
                await _refuse(writer, exc.status, exc.reason)
                return
            if request.method not in ("GET", "HEAD"):
                response = Response(405, "only GET and HEAD\n", headers={"Allow": "GET, HEAD"})
            else:
                response = await handler(request)
            keep = wants_keep_alive(request)
            writer.write(encode(response, head_only=request.method == "HEAD", keep_alive=keep))
            await writer.drain()
            if not keep:
                return
    except ConnectionError:
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _drop_body(reader: asyncio.StreamReader, request: Request) -> None:
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        raise BadRequest(400, "a chunked request body is not taken")
    length = request.headers.get("content-length", "0")
    if not length.isdigit() or int(length) > BODY_LIMIT:
        raise BadRequest(400, "bad or too large Content-Length")
    if int(length):
        try:
            await reader.readexactly(int(length))
        except asyncio.IncompleteReadError:
            raise BadRequest(400, "request body cut short") from None


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    writer.write(encode(Response(status, reason + "\n"), head_only=False, keep_alive=False))
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def start_http_server(host: str, port: int, handler: Handler) -> asyncio.Server:
    """Listening on ``host``:``port``; raises OSError when it cannot bind."""

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, handler)

    return await asyncio.start_server(connected, host, port, limit=HEAD_LIMIT, reuse_address=True)
