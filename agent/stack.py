"""The whole local stack in one command: `python -m agent stack`.

Starts, as subprocesses on loopback with the offline defaults: the dev LiveKit server, the avatar
service, the interviewer worker and (when the `web` package is present) the interview API with
the browser client. They start side by side, each as soon as what it needs is ready (the
interviewer worker registers with the dev server, so it waits for that one), and each is waited
for (health check or registration) before the stack is ready: on a 2-core machine that takes
about half the time of starting them one after another. A port already in use is one clear line
and exit status 2. Ctrl-C stops everything, the interviewer worker first. Logs go to
DATA_DIR/logs/<component>.log. The tests and the room benchmark reuse `Stack`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from devserver.__main__ import room_flags

from .env import whole_number
from .livekit_server import (
    LiveKitServerMissing,
    LocalServerOptions,
    production_room_settings,
    server_binary,
)
from .ports import http_ok, port_in_use

ROOT = Path(__file__).resolve().parent.parent


class StackError(Exception):
    """A component could not start (one sentence, names the component)."""


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    livekit_port: int = 7880
    avatar_port: int = 8089
    web_port: int = 8080
    api_key: str = "devkey"
    api_secret: str = "secret"
    livekit_url: str = ""  # an existing server: no LiveKit server is started
    # the LiveKit server started here: "devserver" (this repository's, zero-install) or
    # "livekit" (the real livekit-server that set-up builds, with livekit.yaml's room settings)
    server: str = "devserver"
    web: bool = True
    avatar: bool = True
    avatar_capacity: int | None = None
    data_dir: Path = Path("./data")
    startup_timeout_s: float = 90.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.livekit_url or f"ws://{self.host}:{self.livekit_port}"

    @property
    def avatar_url(self) -> str:
        return f"http://{self.host}:{self.avatar_port}"


@dataclass
class Component:
    name: str
    argv: list[str]
    port: int | None
    ready: Callable[[Component], bool]
    needs: tuple[str, ...] = ()  # the components that must be ready before this one starts
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    deadline: float = 0.0  # monotonic: not ready by then is a startup error

    def log_tail(self, n: int = 1500) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n:]


def web_available() -> bool:
    return (ROOT / "web" / "__main__.py").is_file()


class Stack:
    """The local stack's processes; `start()` then `stop()` (or use it as a context manager)."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.components: list[Component] = []
        self.log_dir = options.data_dir / "logs"

    def env(self) -> dict[str, str]:
        o = self.options
        env = dict(os.environ)
        env.update(
            {
                "LIVEKIT_URL": o.url,
                "LIVEKIT_API_KEY": o.api_key,
                "LIVEKIT_API_SECRET": o.api_secret,
                "AVATAR_SERVICE_URL": o.avatar_url,
                "INTERVIEW_DATA_DIR": str(o.data_dir),
                "HF_HUB_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        if o.avatar_capacity is not None:
            # interviews this host holds: avatar sessions, and the load the worker reports
            # (agent/capacity.py), so LiveKit gives the host that many and no more
            env["AVATAR_SERVICE_CAPACITY"] = str(o.avatar_capacity)
            env["INTERVIEW_HOST_CAPACITY"] = str(o.avatar_capacity)
        env.update(o.extra_env)
        return env

    def plan(self) -> list[Component]:
        o, py = self.options, sys.executable
        processes = _ready_processes()
        parts: list[Component] = []
        if not o.livekit_url and o.server == "livekit":
            parts.append(self._livekit_server())
        elif not o.livekit_url:
            parts.append(
                Component(
                    "devserver",
                    # livekit.yaml's room settings: rooms created by the interview API only
                    [py, "-m", "devserver", "--host", o.host, "--port", str(o.livekit_port),
                     "--keys", f"{o.api_key}: {o.api_secret}",
                     *room_flags(production_room_settings())],
                    o.livekit_port,
                    lambda c: port_in_use(o.host, o.livekit_port),
                )
            )  # fmt: skip
        if o.avatar:
            parts.append(
                Component(
                    "avatar service",
                    [py, "-m", "avatar_worker", "serve", "--host", o.host,
                     "--port", str(o.avatar_port)],
                    o.avatar_port,
                    lambda c: http_ok(f"{o.avatar_url}/health"),
                )
            )  # fmt: skip
        parts.append(
            Component(
                "interviewer worker",
                [py, "-m", "agent", "dev", "--no-reload", "--log-level", "info"],
                None,
                # registered, and its processes kept ready have their models loaded (worker.py
                # prewarm): the first interviews do not load them while their greetings play
                lambda c: _worker_ready(c.log_tail(200_000), processes),
                needs=() if o.livekit_url else (self.server_name,),
            )
        )
        if o.web and web_available():
            parts.append(
                Component(
                    "web app",
                    [py, "-m", "web", "--host", o.host, "--port", str(o.web_port)],
                    o.web_port,
                    lambda c: http_ok(f"http://{o.host}:{o.web_port}/health"),
                )
            )
        return parts

    @property
    def server_name(self) -> str:
        """The name of the LiveKit server component this stack starts."""
        return "livekit-server" if self.options.server == "livekit" else "devserver"

    def _livekit_server(self) -> Component:
        """The real livekit-server on this host's loopback ports, its config written next to
        the logs (agent/livekit_server.py)."""
        o = self.options
        config = LocalServerOptions(
            host=o.host, port=o.livekit_port, keys={o.api_key: o.api_secret}
        ).resolved()
        path = self.log_dir / "livekit.yaml"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config.config()), encoding="utf-8")
        try:
            binary = server_binary()
        except LiveKitServerMissing as e:
            raise StackError(str(e)) from None
        return Component(
            "livekit-server",
            [str(binary), "--config", str(path)],
            o.livekit_port,
            lambda c: port_in_use(o.host, o.livekit_port),
        )

    def start(self, announce: Callable[[str], None] = lambda _m: None) -> None:
        parts = self.plan()
        for c in parts:  # refuse before starting anything
            if c.port is not None and port_in_use(self.options.host, c.port):
                raise StackError(
                    f"port {c.port} for the {c.name} is already in use on {self.options.host}"
                )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        waiting, starting, ready = list(parts), list[Component](), set[str]()
        try:
            while waiting or starting:
                for c in [c for c in waiting if ready.issuperset(c.needs)]:
                    waiting.remove(c)
                    self._spawn(c, env)
                    starting.append(c)
                for c in list(starting):
                    if self._is_ready(c):
                        starting.remove(c)
                        ready.add(c.name)
                        announce(f"{c.name} ready")
                if starting:
                    time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        # stopped in reverse: the interviewer worker before the services its interviews use
        self.components.sort(key=parts.index)

    def _launch(self, c: Component, env: dict[str, str]) -> None:
        """Start one component and wait until it is ready."""
        self._spawn(c, env)
        while not self._is_ready(c):
            time.sleep(0.2)

    def _spawn(self, c: Component, env: dict[str, str]) -> None:
        c.log_path = self.log_dir / f"{c.name.replace(' ', '-')}.log"
        with open(c.log_path, "wb") as log:
            c.proc = subprocess.Popen(
                c.argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # its own process group, so Ctrl-C reaches only us and we stop the children in
                # order; but our session: Linux's autogroup scheduling shares the CPU fairly
                # between sessions first, and a session per service let the interviewer jobs'
                # bursts hold the avatar service's frame pacing off the CPU for 100-300 ms
                process_group=0,
            )
        self.components.append(c)
        c.deadline = time.monotonic() + self.options.startup_timeout_s

    def _is_ready(self, c: Component) -> bool:
        """Whether a started component is ready; StackError if it exited or ran out of time."""
        if c.ready(c):
            return True
        assert c.proc is not None
        if c.proc.poll() is not None:
            last = c.log_tail(600).strip().splitlines()[-1:] or ["(no output)"]
            raise StackError(
                f"the {c.name} exited with status {c.proc.returncode}: {last[0]} "
                f"(log: {c.log_path})"
            )
        if time.monotonic() > c.deadline:
            raise StackError(
                f"the {c.name} was not ready after {self.options.startup_timeout_s:.0f} s "
                f"(log: {c.log_path})"
            )
        return False

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def relaunch(self, name: str) -> Component:
        """Start the named component again after it exited, on the same port."""
        old = self.component(name)
        if old.proc is not None and old.proc.poll() is None:
            raise StackError(f"the {name} is still running")
        self.components.remove(old)
        fresh = Component(old.name, old.argv, old.port, old.ready, old.needs)
        self._launch(fresh, self.env())
        return fresh

    def stop(self, timeout_s: float = 10.0) -> None:
        for c in reversed(self.components):
            if c.proc is None or c.proc.poll() is not None:
                continue
            c.proc.send_signal(signal.SIGINT)
            try:
                c.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait(5)
        self.components.clear()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _ready_processes() -> int:
    """How many processes the interviewer worker keeps ready (INTERVIEW_IDLE_PROCESSES; one
    under `agent dev`)."""
    try:
        return whole_number(os.environ, "INTERVIEW_IDLE_PROCESSES", 1, 1, 64)
    except ValueError:  # the worker exits naming the setting; the stack reports that
        return 1


def _worker_ready(log: str, processes: int) -> bool:
    """Whether the interviewer worker's log says it registered and has `processes` ready."""
    return "registered worker" in log and log.count("process initialized") >= processes


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m agent stack",
        description="dev LiveKit server + avatar service + interviewer worker (+ web app)",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--livekit-port", type=int, default=7880)
    p.add_argument("--avatar-port", type=int, default=8089)
    p.add_argument("--web-port", type=int, default=8080)
    p.add_argument("--no-web", action="store_true", help="do not start the web app")
    p.add_argument("--no-avatar", action="store_true", help="audio-only interviews")
    p.add_argument("--livekit-url", default="", help="use this LiveKit server, start none")
    p.add_argument(
        "--server",
        choices=("devserver", "livekit"),
        default="devserver",
        help="the LiveKit server to start: the dev server, or the real livekit-server (set-up "
        "builds it into .tools/; LIVEKIT_SERVER_BIN names another)",
    )
    args = p.parse_args(argv)
    options = StackOptions(
        host=args.host,
        livekit_port=args.livekit_port,
        avatar_port=args.avatar_port,
        web_port=args.web_port,
        livekit_url=args.livekit_url,
        server=args.server,
        web=not args.no_web,
        avatar=not args.no_avatar,
        data_dir=Path(os.environ.get("INTERVIEW_DATA_DIR", "./data")),
        api_key=os.environ.get("LIVEKIT_API_KEY", "devkey"),
        api_secret=os.environ.get("LIVEKIT_API_SECRET", "secret"),
    )
    # A service manager or `kill` stops the stack like Ctrl-C does: children are shut down too.
    signal.signal(signal.SIGTERM, _interrupt)
    stack = Stack(options)
    print("starting the local stack (offline defaults; first start loads models) ...", flush=True)
    try:
        stack.start(announce=lambda m: print(f"  {m}", flush=True))
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 130
    # from here on a Ctrl-C, whenever it comes, stops the children too
    try:
        print(f"\nLiveKit server:   {options.url}  (API key {options.api_key})")
        if options.avatar:
            print(f"avatar service:   {options.avatar_url}/health")
        if any(c.name == "web app" for c in stack.components):
            print(f"open the web app: http://{options.host}:{options.web_port}/")
        else:
            print(
                "join with any LiveKit client: create a room and dispatch agent 'interviewer' "
                "with an interview config (see examples/) as metadata"
            )
        print(f"logs:             {stack.log_dir}/\nCtrl-C stops everything.", flush=True)
        while True:
            for c in stack.components:
                if c.proc is not None and c.proc.poll() is not None:
                    print(
                        f"error: the {c.name} stopped (status {c.proc.returncode}); "
                        f"see {c.log_path}",
                        file=sys.stderr,
                    )
                    stack.stop()
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        stack.stop()
    return 0
