"""What every request to the interview API passes before a route sees it (an ASGI middleware).

- **Cross-site writes.** A POST, PUT, PATCH or DELETE that a browser sends from another site
  (`Sec-Fetch-Site`, else `Origin` against `Host`) is refused with 403 unless its origin is one
  the operator named (INTERVIEW_CORS_ORIGINS): a web page cannot make its visitors book
  interviews or upload files here.
- **Content types.** A route that takes a body takes one kind: JSON routes answer 415 to
  anything but `application/json` (a `text/plain` POST is a "simple" cross-site request that no
  preflight guards), upload routes to anything but `multipart/form-data`.
- **Size.** Each route has a byte limit, enforced while the body arrives: a declared
  `Content-Length` over it is refused before anything is read, and the bytes are counted as
  they come (a chunked body, or one longer than it declared), 413 naming the limit.
- **JSON.** A JSON body is read whole (within its limit) and parsed once here with limits
  before any model sees it: not UTF-8, nested deeper than `MAX_JSON_DEPTH`, a number longer
  than `MAX_NUMBER_CHARS` digits, or NaN/Infinity answer 422 naming the problem. Python's own
  parser would raise RecursionError or ValueError on such input, which became 500s.

`client_address` names the client for the rate limits: the connection's peer, or, only when
that peer is a proxy the operator trusts (INTERVIEW_TRUSTED_PROXIES), the address the proxies
put in `X-Forwarded-For`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import IpNetwork

MAX_JSON_DEPTH = 32  # the API's bodies are flat objects: anything deeper is not one of them
MAX_NUMBER_CHARS = 40  # no field takes a number longer than this (int() is quadratic past it)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BodyKind = Literal["json", "multipart", "none"]


@dataclass(frozen=True)
class BodyRule:
    """What a route accepts as its request body: its kind and at most how many bytes."""

    kind: BodyKind
    limit: int


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {_size(limit)}")


def _size(n: int) -> str:
    if n >= 1024 * 1024 and n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n >= 1024 and n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"


# -- JSON with limits ----------------------------------------------------------------------------


class JsonRefused(ValueError):
    """A JSON body refused before parsing reached a model; the message is one sentence."""


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonRefused(
            f"the JSON body has a number of {len(text)} characters; at most {MAX_NUMBER_CHARS}"
        )
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    return float(_number(text))


def _constant(name: str) -> Any:
    raise JsonRefused(f"the JSON body has {name}, which is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of a parsed document, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Sequence[Any] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((c, depth + 1) for c in children)
    return deepest


def check_json(body: bytes) -> None:
    """Raise JsonRefused when `body` is not UTF-8, too deep, or has an oversized number.
    Syntax errors are left to the route, which says them in its own words."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JsonRefused(f"the request body is not UTF-8 text (byte {e.start})") from None
    too_deep = f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError:
        return
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise JsonRefused(too_deep) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise JsonRefused(too_deep)


# -- who is asking -------------------------------------------------------------------------------


def _trusted(address: str, proxies: Sequence[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(scope: Scope, proxies: Sequence[IpNetwork]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy; then the nearest
    address in X-Forwarded-For that is not a trusted proxy (read from the right, where each
    proxy appends the peer it saw; what a client wrote on the left is not believed)."""
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    if not proxies or not _trusted(address, proxies):
        return address
    hops = [
        hop.strip()
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage: the last trusted hop is the best name for the client
        address = hop
        if not _trusted(hop, proxies):
            break
    return address


def cross_site_origin(headers: Headers, allowed: Sequence[str]) -> str | None:
    """The origin of a request a browser sent from another site that the operator did not
    allow, else None (same origin, not from a browser, or an allowed origin)."""
    origin = headers.get("origin")
    site = headers.get("sec-fetch-site")
    if site in ("same-origin", "none"):
        return None
    if site in ("cross-site", "same-site"):
        cross = True
    elif origin is None:
        return None  # not a browser's cross-site request (browsers send Origin on them)
    else:
        cross = (
            origin == "null"
            or urlsplit(origin).netloc.lower() != (headers.get("host") or "").lower()
        )
    if not cross or (origin or "").lower().rstrip("/") in allowed:
        return None
    return origin or "another site"


# -- the middleware ------------------------------------------------------------------------------


class RequestGuard:
    """The checks above, in front of the app (inside CORS, so its errors carry CORS headers)."""

    def __init__(
        self,
        app: ASGIApp,
        rule_for: Callable[[str, str], BodyRule],
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.rule_for = rule_for
        self.allowed_origins = tuple(allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers = Headers(scope=scope)
        if method in UNSAFE_METHODS and (
            origin := cross_site_origin(headers, self.allowed_origins)
        ):
            await _answer(
                send,
                403,
                f"requests from other sites ({origin}) are not accepted; the operator can "
                "allow an origin with INTERVIEW_CORS_ORIGINS",
            )
            return
        rule = self.rule_for(method, scope["path"])
        media = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if rule.kind == "json" and media != "application/json":
            await _answer(
                send, 415, f"{method} {scope['path']} takes Content-Type: application/json"
            )
            return
        if rule.kind == "multipart" and media != "multipart/form-data":
            await _answer(
                send,
                415,
                f"{method} {scope['path']} takes Content-Type: multipart/form-data "
                "with the file in the field 'file'",
            )
            return
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await _answer(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > rule.limit:
                await _answer(send, 413, BodyTooLarge(rule.limit).detail)
                return
        if rule.kind == "json":
            try:
                body = await _read_all(receive, rule.limit)
            except BodyTooLarge as e:
                await _answer(send, 413, e.detail)
                return
            try:
                check_json(body)
            except JsonRefused as e:
                await _answer(send, 422, str(e))
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, _counting(receive, rule.limit), send)


async def _read_all(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the route sees an empty body and the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, when the route waits for it

    return replay


def _counting(receive: Receive, limit: int) -> Receive:
    size = 0

    async def counting() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                # raised inside the route's body read: FastAPI passes HTTPException through
                raise BodyTooLarge(limit)
        return message

    return counting


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status in (413, 400):
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
