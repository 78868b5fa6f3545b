"""How the avatar service builds an avatar it has not drawn yet: in a process of its own, by id.

- The renderer is drawn in the build process: this process does none of it (its drawing code is
  made to fail here), and the renderer it gets back draws the same frames as one built here.
- An unusable portrait is an AvatarError with its reason; a build that hangs is given up and
  its process ended.
- A session running meanwhile keeps its frames: the frame slots it skips and its gaps over
  100 ms while a portrait is built (avatar_worker/build_bench.py, one run), judged only when
  the host itself did not starve the run.
- A portrait's renderer is let go when its last session ends; a preloaded one stays.
- Portraits prepared at the same time in threads (the web API's uploads) each get their own
  face: the face models' shared interpreter raised RuntimeError under two at once.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avatar_worker import avatars
from avatar_worker.avatars import (
    AvatarBuildError,
    AvatarError,
    build_composer,
    get_composer,
    get_composer_async,
)
from avatar_worker.build_bench import _measure, _Session
from avatar_worker.engine import FaceState, FrameComposer, Pose, mouth_index
from avatar_worker.face_landmarks import detect, landmarks
from avatar_worker.portrait import PortraitArt, prepare_image
from avatar_worker.service import AvatarService, ServiceOptions
from avatar_worker.session import RoomSession, SessionOptions

STATES = [
    FaceState(Pose(0, 0, 0), mouth_index(0.0, 0.0), 0),
    FaceState(Pose(2, -1, 1), mouth_index(0.8, 0.5), 0),
    FaceState(Pose(-3, 2, 2), mouth_index(0.3, -1.0), 3),
]


@pytest.fixture
def portrait(tmp_path) -> str:
    """The id of a photo portrait prepared as the web API's upload prepares it."""
    skimage_data = pytest.importorskip("skimage.data")
    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    return prepare_image(photo, avatars.avatars_dir(), avatar_id="p-astronaut").avatar_id


def _children() -> list[str]:
    """Command lines of this process's child processes."""
    me, out = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError):
            continue
    return out


async def test_a_new_portrait_is_built_in_another_process(portrait, monkeypatch):
    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the avatar was drawn in the service's own process")

    with monkeypatch.context() as m:
        m.setattr(FrameComposer, "warm_up", not_here)
        m.setattr(PortraitArt, "__init__", not_here)
        built = await get_composer_async(portrait, 128)
    assert built.warm and get_composer(portrait, 128) is built  # shared from now on
    here = build_composer(portrait, 128)
    for state in STATES:
        assert built.compose(state) == here.compose(state)
        assert built.video_frame(state).data == here.video_frame(state).data
    avatars.release_composer(portrait, 128)


async def test_an_unusable_portrait_is_an_avatar_error_with_its_reason(portrait):
    (avatars.avatars_dir() / portrait / "portrait.json").write_text("{not json")
    with pytest.raises(AvatarError, match="unreadable; prepare it again"):
        await get_composer_async(portrait, 128)


async def test_a_build_that_hangs_is_given_up_and_its_process_ended(portrait, monkeypatch):
    monkeypatch.setattr(avatars, "BUILD_TIMEOUT_S", 0.2)
    with pytest.raises(AvatarBuildError, match="took longer than"):
        await get_composer_async(portrait, 128)
    assert not [c for c in _children() if "avatar_worker.build_worker" in c]
    assert (portrait, 128) not in avatars._COMPOSERS


async def test_a_running_session_keeps_its_frames_while_a_portrait_is_built(portrait):
    """One session speaking at 25 fps on this event loop while a 512 px portrait is built.
    Drawn on this loop, a build froze it for the whole build (3-30 s; build_bench --on-loop:
    ~820 frame slots lost). Up to three builds: the first that loses no frame passes; on this
    shared VM a run can lose a few to the host (other tenants, memory first touched), which the
    sleeper process does not always see, so none may freeze the loop for a second even then."""
    sessions = [_Session(get_composer("woman", 512, warm=True), seed=1)]
    runs = []
    try:
        await asyncio.sleep(1.0)
        for n in range(3):
            size = 512 + 4 * n  # a renderer not built yet each time

            async def build(size: int = size) -> float:
                await get_composer_async(portrait, size)
                return 0.0

            run = await _measure("process", sessions, build)
            avatars.release_composer(portrait, size)
            runs.append(run)
            assert run.frames_published > 50 and run.loop_lag_max_ms < 1000, run
            if run.slots_missed == 0 and run.stalls_over_100ms == 0:
                return
            print(f"\nframes lost while building ({run}); building again")
    finally:
        for session in sessions:
            await session.aclose()
    if all(r.host_lost_share > 0.02 or r.host_late_max_ms > 100 for r in runs):
        pytest.xfail(f"the host starved every run: {runs}")
    pytest.fail(f"frames lost in every run: {runs}")


async def test_a_portraits_renderer_is_let_go_with_its_last_session():
    svc = AvatarService(ServiceOptions(capacity=3, preload=("woman",), size=152))
    kept = get_composer("woman", 152)
    shared = get_composer("man", 152)  # stands for a portrait: not preloaded
    sessions = []
    for n, avatar in enumerate(("man", "man", "woman")):
        options = SessionOptions("ws://127.0.0.1:1", "unused", avatar=avatar, size=152)
        composer = shared if avatar == "man" else kept
        session = RoomSession(f"s{n}", options, composer, on_closed=svc._forget)
        svc.sessions[session.session_id] = session
        sessions.append(session)
    await sessions[0].aclose("done")
    assert avatars._COMPOSERS.get(("man", 152)) is shared  # another session still uses it
    await sessions[1].aclose("done")
    assert ("man", 152) not in avatars._COMPOSERS
    await sessions[2].aclose("done")
    assert avatars._COMPOSERS.get(("woman", 152)) is kept  # preloaded: stays
    await asyncio.gather(*svc._background)  # the heap trim ran


def test_portraits_prepared_at_once_in_threads_each_get_their_face():
    skimage_data = pytest.importorskip("skimage.data")
    photos = [skimage_data.astronaut(), np.ascontiguousarray(skimage_data.astronaut()[:, ::-1])]

    def mesh(image: np.ndarray) -> np.ndarray:
        found = detect(image)
        assert found is not None
        return landmarks(image, found)[0]

    alone = [mesh(photo) for photo in photos]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for _ in range(12):
            together = list(pool.map(mesh, photos))
            for got, expected in zip(together, alone, strict=True):
                assert np.abs(got - expected).max() < 1e-3
