"""LLMs for the interviewer: OpenAI (or any OpenAI-compatible server) and the offline scripted one.

`ScriptedInterviewerLLM` is a deterministic `llm.LLM`: it reads the chat context the session
gives it, and either calls one of the stage tools (next question, follow-up, repeat, skip) or
speaks the line a tool or a stage handed it (the text between « »), prefixed by a short
acknowledgement. It walks the same plan and the same tools an OpenAI model would.
"""

from __future__ import annotations

import json
import re
from typing import Any

from livekit.agents import APIConnectOptions, llm, utils
from livekit.agents.llm import ChatContext, ChatMessage, FunctionCall, FunctionCallOutput
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from ..prompts import matches_any
from .models import DEFAULT_OPENAI_LLM_MODEL

_QUOTED = re.compile(r"«(.*?)»", re.DOTALL)
_STAGE = re.compile(r"\[stage: (\w+)\]")
_SHORT_REQUEST_WORDS = 12
_ANSWER_TOOLS = {"next_question", "skip_question"}
# the scripted interviewer answers this many of the candidate's own questions, then closes
MAX_CANDIDATE_QUESTIONS = 2


class ScriptedInterviewerLLM(llm.LLM):
    def __init__(self, prompts: dict[str, Any], *, persona: str, language: str) -> None:
        super().__init__()
        self._prompts = prompts
        self._acks: list[str] = prompts["persona"][persona]["acks"]
        self._language = language

    @property
    def model(self) -> str:
        return "scripted-interviewer"

    @property
    def provider(self) -> str:
        return "offline"

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
        return _ScriptedStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options
        )

    # -- decisions, kept pure so tests can call them directly --

    def decide(self, chat_ctx: ChatContext) -> tuple[str, str] | tuple[str, dict[str, Any]]:
        """("say", text) or ("call", {"name": ..., "arguments": {...}})."""
        items = [
            i
            for i in chat_ctx.items
            if i.type in ("message", "function_call", "function_call_output")
        ]
        if not items:
            return ("say", "")
        last = items[-1]
        if isinstance(last, FunctionCallOutput):
            quoted = _QUOTED.search(last.output or "")
            if quoted is None:
                # the tool refused (max follow-ups, protected topic): go on with the plan
                return ("call", {"name": "next_question", "arguments": {}})
            text = quoted.group(1).strip()
            if self._is_directive(last.output, "ask_after_answer"):
                text = f"{self._ack(chat_ctx)} {text}"
            return ("say", text)
        if isinstance(last, ChatMessage) and last.role in ("system", "developer"):
            quoted = _QUOTED.search(last.text_content or "")
            return ("say", quoted.group(1).strip() if quoted else "")
        if isinstance(last, ChatMessage) and last.role == "user":
            return self._on_answer(chat_ctx, items)
        return ("say", "")

    def _on_answer(
        self, chat_ctx: ChatContext, items: list[Any]
    ) -> tuple[str, dict[str, Any]] | tuple[str, str]:
        answer_parts: list[str] = []
        for item in reversed(items):
            if isinstance(item, ChatMessage) and item.role == "user":
                answer_parts.append(item.text_content or "")
            else:
                break
        answer = " ".join(reversed(answer_parts)).strip()
        stage = self._stage(chat_ctx)
        intents = self._prompts["intents"]
        en = self._language == "en"
        short = len(answer.split()) <= _SHORT_REQUEST_WORDS

        if stage == "greeting":
            return _call("next_question")
        if short and matches_any(answer, intents["rephrase"], word_boundaries=en):
            return _call("repeat_question", rephrase=True)
        if short and matches_any(answer, intents["repeat"], word_boundaries=en):
            return _call("repeat_question", rephrase=False)
        if short and matches_any(answer, intents["skip"], word_boundaries=en):
            return _call("skip_question")
        if stage == "candidate_questions":
            if not answer or matches_any(answer, intents["no_more_questions"], word_boundaries=en):
                return _call("next_question")
            answered = self._replies_since_opener(items)
            if answered < MAX_CANDIDATE_QUESTIONS and matches_any(
                answer, intents["question_marks"], word_boundaries=False
            ):
                return ("say", self._prompts["lines"]["candidate_answer"])
            return _call("next_question")
        follow_ups = self._follow_ups_since_last_question(items)
        if self._too_short(answer) and follow_ups < 2:
            question = self._prompts["follow_ups"][follow_ups % len(self._prompts["follow_ups"])]
            return _call("ask_follow_up", question=question)
        return _call("next_question")

    def last_line(self, chat_ctx: ChatContext) -> str:
        """The most recent «line» a tool or stage handed over, to say again."""
        for item in reversed(chat_ctx.items):
            text = (
                item.output
                if isinstance(item, FunctionCallOutput)
                else item.text_content
                if isinstance(item, ChatMessage) and item.role in ("system", "developer")
                else None
            )
            if text and (m := _QUOTED.search(text)):
                return m.group(1).strip()
        return ""

    def _too_short(self, answer: str) -> bool:
        if "min_answer_words" in self._prompts:
            return len(answer.split()) < int(self._prompts["min_answer_words"])
        return len(answer.replace(" ", "")) < int(self._prompts["min_answer_chars"])

    @staticmethod
    def _follow_ups_since_last_question(items: list[Any]) -> int:
        n = 0
        for item in reversed(items):
            if isinstance(item, FunctionCall):
                if item.name in _ANSWER_TOOLS:
                    break
                if item.name == "ask_follow_up":
                    n += 1
            elif isinstance(item, ChatMessage) and item.role in ("system", "developer"):
                if _QUOTED.search(item.text_content or ""):
                    break  # a stage opener: a new planned question started here
        return n

    @staticmethod
    def _replies_since_opener(items: list[Any]) -> int:
        """Interviewer replies since the current question was opened (by a stage or a tool)."""
        n = 0
        for item in reversed(items):
            if isinstance(item, ChatMessage) and item.role == "assistant":
                n += 1
            elif isinstance(item, ChatMessage) and item.role in ("system", "developer"):
                if _QUOTED.search(item.text_content or ""):
                    break
        return max(0, n - 1)  # the opener's own spoken question does not count

    @staticmethod
    def _stage(chat_ctx: ChatContext) -> str:
        for item in chat_ctx.items:
            if isinstance(item, ChatMessage) and item.role in ("system", "developer"):
                m = _STAGE.search(item.text_content or "")
                if m:
                    return m.group(1)
        return ""

    def _is_directive(self, output: str, key: str) -> bool:
        template = self._prompts["directives"][key]
        return output.startswith(template.split("«", 1)[0])

    def _ack(self, chat_ctx: ChatContext) -> str:
        n = sum(1 for i in chat_ctx.items if isinstance(i, ChatMessage) and i.role == "assistant")
        return self._acks[n % len(self._acks)]


def _call(name: str, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return ("call", {"name": name, "arguments": arguments})


class _ScriptedStream(llm.LLMStream):
    tools_allowed = True

    async def _run(self) -> None:
        assert isinstance(self._llm, ScriptedInterviewerLLM)
        kind, payload = self._llm.decide(self._chat_ctx)
        if kind == "call" and not self.tools_allowed:
            # the session wants words now (e.g. after its tool-step limit): restate the last line
            kind, payload = "say", self._llm.last_line(self._chat_ctx)
        request_id = utils.shortuuid("scripted_")
        if kind == "call":
            assert isinstance(payload, dict)
            available = {t.id for t in self._tools if hasattr(t, "id")}
            if available and payload["name"] not in available:
                return
            self._event_ch.send_nowait(
                llm.ChatChunk(
                    id=request_id,
                    delta=llm.ChoiceDelta(
                        role="assistant",
                        tool_calls=[
                            llm.FunctionToolCall(
                                name=payload["name"],
                                arguments=json.dumps(payload["arguments"], ensure_ascii=False),
                                call_id=utils.shortuuid("call_"),
                            )
                        ],
                    ),
                )
            )
            return
        assert isinstance(payload, str)
        if not payload:
            return
        # sentence by sentence, like a streaming model, so TTS can start on the first one
        for piece in re.findall(r"[^.?!。]+[.?!。]*\s*", payload) or [payload]:
            self._event_ch.send_nowait(
                llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=piece))
            )


def openai_llm(model: str | None, base_url: str | None, api_key: str | None) -> llm.LLM:
    """OpenAI chat completions, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp)."""
    from livekit.plugins import openai

    kwargs: dict[str, Any] = {"model": model or DEFAULT_OPENAI_LLM_MODEL}
    if base_url:
        kwargs["base_url"] = base_url
    # self-hosted OpenAI-compatible servers usually accept any key
    kwargs["api_key"] = api_key or "not-needed"
    return openai.LLM(**kwargs)
