"""A scripted livekit LLM for the judge tests: replies with queued texts, records every call."""

from __future__ import annotations

import json
from typing import Any

from livekit.agents import APIConnectOptions, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


class ScriptedLLM(llm.LLM):
    """Each chat() pops the next reply: a string is streamed in two chunks, an exception raised."""

    def __init__(self, replies: list[str | Exception], *, model: str = "test-model") -> None:
        super().__init__()
        self._replies = list(replies)
        self._model = model
        self.calls: list[dict[str, Any]] = []

    @property
    def model(self) -> str:
        return self._model

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        response_format: Any = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        self.calls.append({"chat_ctx": chat_ctx, "response_format": response_format})
        reply = self._replies.pop(0) if self._replies else ""
        return _ScriptedStream(self, reply, chat_ctx=chat_ctx, conn_options=conn_options)


class _ScriptedStream(llm.LLMStream):
    def __init__(
        self,
        owner: ScriptedLLM,
        reply: str | Exception,
        *,
        chat_ctx: llm.ChatContext,
        conn_options: APIConnectOptions,
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=[], conn_options=conn_options)
        self._reply = reply

    async def _run(self) -> None:
        if isinstance(self._reply, Exception):
            raise self._reply
        half = len(self._reply) // 2
        for i, part in enumerate((self._reply[:half], self._reply[half:])):
            if part:
                self._event_ch.send_nowait(
                    llm.ChatChunk(id=f"c{i}", delta=llm.ChoiceDelta(role="assistant", content=part))
                )


class RubricJudgeLLM(ScriptedLLM):
    """A judge that always gives a valid verdict: it scores every criterion the prompt names 4
    and quotes the first words of the candidate's answer. Records every call."""

    def __init__(self, *, model: str = "test-model") -> None:
        super().__init__([], model=model)

    def chat(self, *, chat_ctx: llm.ChatContext, **kwargs: Any) -> llm.LLMStream:
        system = chat_ctx.items[0].text_content or ""
        user = chat_ctx.items[1].text_content or ""
        names = system.split("Criteria to score:", 1)[1].splitlines()[0]
        answer = user.split("Candidate's answer:\n", 1)[1]
        quote = " ".join(answer.split()[:3])
        self._replies = [
            json.dumps(
                {
                    "criteria": [
                        {"criterion": n.strip(), "score": 4, "reason": "ok", "evidence": [quote]}
                        for n in names.split(",")
                        if n.strip()
                    ],
                    "feedback": "Give one concrete number.",
                    "better_answer_outline": ["Situation", "Action", "Result"],
                }
            )
        ]
        return super().chat(chat_ctx=chat_ctx, **kwargs)
