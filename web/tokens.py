"""The candidate's join token: one room, one identity, microphone only, short-lived."""

from __future__ import annotations

from datetime import datetime, timedelta

from livekit import api

from .settings import WebSettings

CANDIDATE_SOURCES = ["microphone"]


def candidate_token(
    settings: WebSettings, room: str, identity: str, name: str, now: datetime
) -> tuple[str, datetime]:
    """A signed JWT for the candidate and the moment it stops being accepted for joining."""
    ttl = timedelta(seconds=settings.token_ttl_s)
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_publish_sources=list(CANDIDATE_SOURCES),
        can_subscribe=True,
        # the candidate speaks; captions, state and control all travel from the server side
        can_publish_data=False,
        can_update_own_metadata=False,
    )
    token = (
        api.AccessToken(settings.api_key, settings.api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_kind("standard")
        .with_grants(grants)
        .with_ttl(ttl)
    )
    return token.to_jwt(), now + ttl
