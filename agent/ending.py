"""How an interview's end is recorded, whoever sees it: the job itself, or the web API for a job
that died.

- Why it ended: the `end_reason` codes below, stored by the job (its shutdown callback) or the
  API (web/interview_watch.py) in the store's `interviews.end_reason` and reported by the API's
  session status.
- That the job is alive: `Heartbeat`, a thread of the job process that stamps the store every
  `HEARTBEAT_INTERVAL_S` while the interview runs. It stops only with the process, so a job
  killed with SIGKILL, or whose host is lost, is seen within seconds by the API, independently
  of how long the LiveKit server keeps its dead participant (about 20 s on livekit-server).
- The files: `write_from_store` writes transcript.json and the report from the stored turns for
  the API, under the store's claim (agent/store.py), so the job's own shutdown callback and the
  API never both write them, and an erase racing either leaves nothing behind.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

from .store import TranscriptStore, staging_dir

logger = logging.getLogger("interview.ending")

# why an interview ended (interviews.end_reason; SessionStatus.end_reason)
COMPLETED = "completed"  # the interviewer said goodbye and left
ENDED_BY_REQUEST = "ended_by_request"  # DELETE /api/sessions/{id}
ROOM_CLOSED = "room_closed"  # the room closed: the candidate left for good, or never came
NO_INTERVIEWER = "no_interviewer"  # no interviewer worker took the booking
INTERVIEWER_LOST = "interviewer_lost"  # the job died, or was ended, before the interview was
END_REASONS = (COMPLETED, ENDED_BY_REQUEST, ROOM_CLOSED, NO_INTERVIEWER, INTERVIEWER_LOST)

HEARTBEAT_INTERVAL_S = 2.0
# who claimed the files (interviews.finalized_by)
BY_AGENT = "agent"
BY_API = "api"

_ROOM_GONE = (5, 10)  # rtc.DisconnectReason ROOM_DELETED, ROOM_CLOSED


def job_end_reason(finished: bool, disconnect_reason: int | None, candidate_in_room: bool) -> str:
    """The job's reason for ending: done; its room closed, or the candidate had left (the room
    closes after them; the server's end of the job can reach the job before the room's word on
    why); else cut short under a candidate still there (terminated by the server or the worker,
    its connection lost, a crash)."""
    if finished:
        return COMPLETED
    if disconnect_reason in _ROOM_GONE or not candidate_in_room:
        return ROOM_CLOSED
    return INTERVIEWER_LOST


class Heartbeat:
    """Stamps the interview's row every `interval_s` from a thread of the job process: a busy
    event loop does not stop it, only the end of the process (or `stop()`) does."""

    def __init__(
        self, store: TranscriptStore, interview_id: str, interval_s: float = HEARTBEAT_INTERVAL_S
    ) -> None:
        self.store = store
        self.interview_id = interview_id
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-{interview_id}", daemon=True
        )

    def start(self) -> Heartbeat:
        self.store.beat(self.interview_id)  # at once: the API judges from the first beat on
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not self.store.beat(self.interview_id):
                    return  # erased
            except Exception as e:  # a locked or closed database: the next beat may do
                logger.warning(
                    "heartbeat not stored", extra={"interview": self.interview_id, "error": str(e)}
                )


def write_from_store(
    store: TranscriptStore,
    interview_id: str,
    out_dir: Path,
    *,
    reason: str,
    dead_before: float | None = None,
) -> bool:
    """For the API, in a worker thread: claim the interview's files, mark its end with `reason`
    and write transcript.json, then the report, from the stored turns. False when the job (or
    an earlier call) already claimed them, or the interview was erased. `dead_before`: take
    over a claim whose job stopped beating before then without publishing."""
    if not store.claim(interview_id, BY_API, reason=reason, dead_before=dead_before):
        return False
    transcript = store.transcript(interview_id)
    staging = staging_dir(out_dir)
    transcript.write(staging / "transcript.json")
    if not store.publish(interview_id, BY_API, staging, out_dir, final=False):
        return False
    from .evaluation import generate_report, judge_llm_from_env

    staging = staging_dir(out_dir)
    try:
        # the LLM judge when the API has OPENAI_API_KEY, as the job would have; else heuristic
        generate_report(transcript, staging, llm=judge_llm_from_env())
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store.publish(interview_id, BY_API, staging, out_dir, final=True)
