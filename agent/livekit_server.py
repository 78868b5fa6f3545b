"""The real livekit-server on this host: where its binary is, a config for loopback, a process.

Production runs LiveKit's own server with `livekit.yaml`; `scripts/setup.sh` builds the pinned
version into `.tools/livekit-server` (or `LIVEKIT_SERVER_BIN` names another binary). The tests,
the room benchmarks and `python -m agent stack --server livekit` start it here on free loopback
ports with the room settings of `livekit.yaml` that the product relies on (rooms created by the
API only, their timeouts, the participant limit), so what they show holds on the server users run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .ports import free_loopback_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
PINNED_VERSION = "1.13.5"  # scripts/setup.sh builds this one
PRODUCTION_CONFIG = ROOT / "livekit.yaml"


class LiveKitServerMissing(RuntimeError):
    """No livekit-server binary where one was expected (one sentence saying how to get it)."""


def server_binary(env: Mapping[str, str] | None = None) -> Path:
    """The livekit-server to run: `LIVEKIT_SERVER_BIN`, else the one set-up builds."""
    env = os.environ if env is None else env
    named = env.get("LIVEKIT_SERVER_BIN", "")
    path = Path(named) if named else ROOT / ".tools" / "livekit-server"
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = "LIVEKIT_SERVER_BIN" if named else "scripts/setup.sh (it builds it with Go)"
        raise LiveKitServerMissing(
            f"no livekit-server executable at {path}: run {where}, or install LiveKit's own "
            "server and point LIVEKIT_SERVER_BIN at it"
        )
    return path


def production_room_settings() -> dict[str, Any]:
    """The `room:` section of livekit.yaml, which the interview API and agent rely on."""
    config = yaml.safe_load(PRODUCTION_CONFIG.read_text(encoding="utf-8")) or {}
    return dict(config.get("room") or {})


@dataclass(frozen=True)
class LocalServerOptions:
    """One livekit-server node on loopback; ports 0 mean "pick a free one"."""

    host: str = "127.0.0.1"
    port: int = 0
    rtc_udp_port: int = 0
    keys: Mapping[str, str] = field(default_factory=lambda: {"devkey": "secret"})
    room: Mapping[str, Any] = field(default_factory=production_room_settings)
    redis_address: str = ""  # several nodes share one Redis (LiveKit's distributed mode)
    log_level: str = "info"
    development: bool = True

    def resolved(self) -> LocalServerOptions:
        return LocalServerOptions(
            host=self.host,
            port=self.port or free_loopback_port(),
            rtc_udp_port=self.rtc_udp_port or free_loopback_port(socket.SOCK_DGRAM),
            keys=self.keys,
            room=self.room,
            redis_address=self.redis_address,
            log_level=self.log_level,
            development=self.development,
        )

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "port": self.port,
            "bind_addresses": [self.host],
            "rtc": {
                "udp_port": self.rtc_udp_port,
                "tcp_port": 0,  # ICE over TCP would listen on every interface
                "node_ip": self.host,
                "use_external_ip": False,  # no STUN look-up: nothing leaves this host
                # ICE on loopback only: the server offers its loopback address as a candidate
                # and binds its UDP port on that interface alone
                "enable_loopback_candidate": True,
                "interfaces": {"includes": ["lo"]},
                "ips": {"includes": [f"{self.host}/32"]},
            },
            "keys": dict(self.keys),
            "room": dict(self.room),
            "logging": {"level": self.log_level},
            # development mode serves /debug/rooms (who subscribes to what, read by the room
            # tests) on this loopback port; in v1.13.5 it changes nothing about rooms, dispatch
            # or media with the ports and IP set here (pkg/config/config.go, rtcconfig), and lets
            # the test key pair's short secret pass without an error in the log
            "development": self.development,
        }
        if self.redis_address:
            config["redis"] = {"address": self.redis_address}
        return config

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"


class LocalLiveKitServer:
    """A livekit-server subprocess; `start()` waits until it accepts connections."""

    def __init__(
        self,
        options: LocalServerOptions | None = None,
        *,
        workdir: Path,
        binary: Path | None = None,
    ) -> None:
        self.options = (options or LocalServerOptions()).resolved()
        self.workdir = workdir
        self.binary = binary or server_binary()
        self.config_path = workdir / "livekit.yaml"
        self.log_path = workdir / "livekit-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.options.url

    def argv(self) -> list[str]:
        return [str(self.binary), "--config", str(self.config_path)]

    def start(self, timeout_s: float = 30.0) -> LocalLiveKitServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.options.config()), encoding="utf-8")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout_s
        while not port_in_use(self.options.host, self.options.port):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"livekit-server exited with {self.proc.returncode}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"livekit-server did not start listening: {self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, n: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> LocalLiveKitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
