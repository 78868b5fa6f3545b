"""Typed keys of the dev server's shared state on its aiohttp application (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web

from devserver.rooms import RoomRegistry

ROOMS = web.AppKey("rooms", RoomRegistry)
KEYS = web.AppKey("keys", dict[str, str])  # API key -> secret
PUBLIC_URL = web.AppKey("public_url", str)  # the signal URL as clients reach it
