"""Test doubles for the interviewer tests: an LLM that issues a scripted list of tool calls."""

from __future__ import annotations

import json
from typing import Any

from livekit.agents import APIConnectOptions, llm, utils
from livekit.agents.llm import ChatContext, FunctionCallOutput
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


class ToolCallingLLM(llm.LLM):
    """Answers every user turn with the next queued tool call, then speaks the tool's output.

    `calls` is a list of (tool_name, arguments). After a tool output it says the output text,
    so tests can see exactly what each tool returned.
    """

    def __init__(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__()
        self.calls = list(calls)
        self.outputs: list[str] = []

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return _Stream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _Stream(llm.LLMStream):
    async def _run(self) -> None:
        owner = self._llm
        assert isinstance(owner, ToolCallingLLM)
        last = self._chat_ctx.items[-1]
        rid = utils.shortuuid("t_")
        if isinstance(last, FunctionCallOutput):
            owner.outputs.append(last.output)
            text = last.output
        elif last.type == "message" and last.role == "user" and owner.calls:
            name, args = owner.calls.pop(0)
            call = llm.FunctionToolCall(
                name=name, arguments=json.dumps(args), call_id=utils.shortuuid("c_")
            )
            self._event_ch.send_nowait(
                llm.ChatChunk(id=rid, delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))
            )
            return
        else:
            text = "(stage opened)"
        self._event_ch.send_nowait(
            llm.ChatChunk(id=rid, delta=llm.ChoiceDelta(role="assistant", content=text))
        )
