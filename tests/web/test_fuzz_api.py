"""Fuzzing of the interview API's OpenAPI schema (schemathesis): no input gets a 5xx.

Bounded and repeatable: `EXAMPLES` generated requests per operation and mode (valid and
invalid inputs), derandomized (a fixed seed), no example database, in-process against the ASGI
app (no server, no socket). LiveKit and the avatar service are closed local ports, so their
calls fail at once (503 naming the LiveKit server: the one 5xx a valid booking may get here).
Requests that send no Authorization header get the admin token, so the admin-only prompt editor
and the per-session endpoints are fuzzed past their key checks; requests whose generated
headers carry one keep it (the key checks themselves get fuzzed).
"""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from web_support import ADMIN_TOKEN

from web.settings import RateLimit

# per operation and mode (valid, invalid): about 15 operations x 2 x EXAMPLES requests
EXAMPLES = 80


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    """The schema of an app of its own: data and prompts in a temporary folder."""
    import dataclasses
    import shutil

    from agent.ports import free_loopback_port
    from web.app import create_app
    from web.settings import REPO_ROOT, WebSettings

    root = tmp_path_factory.mktemp("fuzz")
    prompts = root / "prompts"
    shutil.copytree(REPO_ROOT / "prompts", prompts)
    url = f"ws://127.0.0.1:{free_loopback_port()}"
    base = WebSettings(
        livekit_url=url,
        livekit_public_url=url,
        data_dir=root / "data",
        prompts_dir=prompts,
        avatar_service_url=f"http://127.0.0.1:{free_loopback_port()}",
        admin_token=ADMIN_TOKEN,
    )
    # limits high enough that the fuzzer reaches the routes instead of the rate limiter
    app = create_app(
        dataclasses.replace(
            base, session_rate=RateLimit(100_000, 60), upload_rate=RateLimit(100_000, 60)
        )
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _livekit_down(response) -> bool:  # type: ignore[no-untyped-def]
    """The one 5xx the API means to give: 503 naming the LiveKit server it cannot reach (no
    server runs here), for a request that was valid."""
    try:
        detail = response.json().get("detail", "")
    except ValueError:
        return False
    return response.status_code == 503 and "LiveKit server" in detail


def _fuzz(operation, mode: GenerationMode, failures: list[str]) -> int:  # type: ignore[no-untyped-def]
    """EXAMPLES requests for one operation in one mode; the 5xx found go to `failures`."""
    label = f"{operation.label} ({mode.value})"
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # a fixed seed: the same requests on every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        nonlocal calls
        headers = case.headers or {}
        sends_auth = any(k.lower() == "authorization" for k in headers)
        extra = {} if sends_auth else {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        calls += 1
        response = case.call(headers=extra)
        if response.status_code >= 500 and not _livekit_down(response):
            failures.append(
                f"{label}: {response.status_code} {response.text[:200]!r} "
                f"for {case.as_curl_command()}"
            )

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
        assert mode is GenerationMode.NEGATIVE, label
    return calls


def test_no_input_gets_a_server_error(api_schema):
    """Each operation, valid and invalid inputs; every 5xx found is listed at the end (not
    only the first), with the request that got it."""
    failures: list[str] = []
    start = time.monotonic()
    calls = sum(
        _fuzz(result.ok(), mode, failures)
        for result in api_schema.get_all_operations()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )
    elapsed = time.monotonic() - start
    print(f"schemathesis: {calls} requests in {elapsed:.1f} s, {len(failures)} server errors")
    assert not failures, "\n".join(failures[:20])
