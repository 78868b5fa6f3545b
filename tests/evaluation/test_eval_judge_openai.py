"""The judge through the real livekit-plugins-openai LLM against a loopback stand-in server.

Checks the production path end to end without a network: the plugin sends the JudgeVerdict JSON
schema as response_format, streams the reply, and the judge validates it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from test_eval_judge import ANSWER, QUESTION, verdict

from agent.evaluation.judge import LLMJudge


async def _serve(replies: list[str], seen: list[dict[str, Any]]) -> tuple[web.AppRunner, int]:
    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        text = replies.pop(0)
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            chunk = {
                "id": "cmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}}],
            }
            await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_openai_plugin_sends_the_schema_and_the_verdict_is_used() -> None:
    openai = pytest.importorskip("livekit.plugins.openai")
    seen: list[dict[str, Any]] = []
    runner, port = await _serve([verdict()], seen)
    llm = openai.LLM(model="judge-test", api_key="test", base_url=f"http://127.0.0.1:{port}/v1")
    try:
        a = await LLMJudge(llm, "en", timeout_s=20).assess(QUESTION, ANSWER, "behavioral")
    finally:
        await llm.aclose()
        await runner.cleanup()
    assert a.status == "ok" and a.assessor == "llm:judge-test"
    fmt = seen[0]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "JudgeVerdict"
    schema = json.dumps(fmt["json_schema"]["schema"])
    assert "minLength" not in schema  # strict modes refuse it
    assert seen[0]["messages"][0]["role"] in ("system", "developer")
