"""Avatar worker command line: `python -m avatar_worker <command>`.

Each command is one `add_*` function registering its parser and handler in COMMANDS. Commands
whose module is heavy to import (`serve` loads livekit.agents) are in LAZY_COMMANDS: their module
is imported only when that command runs; otherwise only their name and help line are registered.
Bad input exits non-zero with one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .avatars import AvatarError, get_composer
from .espeak_data import EspeakToolError

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def _fps(value: str) -> float:
    fps = float(value)
    if not 5.0 <= fps <= 60.0:
        raise argparse.ArgumentTypeError("--fps must be between 5 and 60")
    return fps


def _size(value: str) -> int:
    size = int(value)
    if size < 64 or size > 2048 or size % 4:
        raise argparse.ArgumentTypeError("--size must be a multiple of 4 between 64 and 2048")
    return size


def cmd_render(args: argparse.Namespace) -> int:
    from .offline import iter_frames, read_audio, write_mp4, write_params

    pcm, rate = read_audio(args.audio, args.fps)
    composer = get_composer(args.avatar, args.size)
    params = []

    def frames():  # type: ignore[no-untyped-def]
        for video, audio, frame_params in iter_frames(composer, pcm, rate, args.fps, args.analyzer):
            params.append(frame_params)
            yield video, audio, frame_params

    write_mp4(args.out, frames(), args.size, args.fps, rate)
    if args.params_out:
        write_params(args.params_out, params)
    print(f"wrote {args.out} ({len(params)} frames)", file=sys.stderr)
    return 0


def add_render(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="offline lip-sync render of a speech file to MP4")
    p.add_argument("--audio", type=Path, required=True, help="speech file (wav, mp3, ...)")
    p.add_argument("--avatar", required=True, help="woman, man, a prepared id or an image path")
    p.add_argument("--out", type=Path, required=True, help="output .mp4 (H.264 + AAC)")
    p.add_argument("--params-out", type=Path, help="per-frame parameters as JSON lines")
    p.add_argument("--fps", type=_fps, default=25.0)
    p.add_argument("--size", type=_size, default=512)
    p.add_argument("--analyzer", choices=["model", "rules"], default="model")
    p.set_defaults(func=cmd_render)


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    result = run_bench(args.avatar, args.size, args.fps, quick=args.quick)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="render throughput, latency and memory benchmark")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--avatar", default="woman")
    p.add_argument("--size", type=_size, default=512)
    p.add_argument("--fps", type=_fps, default=25.0)
    p.add_argument("--quick", action="store_true", help="shorter runs (noisier figures)")
    p.set_defaults(func=cmd_bench)


def cmd_lipsync_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate

    result = evaluate(args.analyzer, args.fps, args.sentences, tuple(args.voice_warp))
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0 if result["passed"] or not args.strict else 1


def add_lipsync_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lipsync-eval", help="lip-sync scores on espeak-ng ko/en speech")
    p.add_argument("--analyzer", choices=["model", "rules"], default="model")
    p.add_argument("--fps", type=_fps, default=25.0)
    p.add_argument("--sentences", type=int, help="only the first N held-out sentences")
    p.add_argument("--json", action="store_true", help="one line of JSON")
    p.add_argument(
        "--voice-warp",
        type=float,
        nargs="*",
        default=[],
        help="also score the speech with pitch/formants scaled by these factors (e.g. 0.85 1.15)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.set_defaults(func=cmd_lipsync_eval)


def cmd_prepare(args: argparse.Namespace) -> int:
    from .avatars import avatars_dir
    from .portrait import prepare_image

    prepared = prepare_image(args.image, avatars_dir(), avatar_id=args.id)
    print(json.dumps({"id": prepared.avatar_id, "dir": str(prepared.directory)}))
    return 0


def add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="prepare a portrait photo as a custom avatar")
    p.add_argument("image", type=Path)
    p.add_argument("--id", help="avatar id (default: derived from the image content)")
    p.set_defaults(func=cmd_prepare)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_render,
    add_bench,
    add_lipsync_eval,
    add_prepare,
]


@dataclass(frozen=True)
class LazyCommand:
    """A command registered by `module.function` (like the add_* above), imported on use."""

    name: str
    help: str  # the help line the module's parser has, shown in the command list
    module: str
    function: str


LAZY_COMMANDS = [
    LazyCommand(
        "serve", "the avatar service for LiveKit rooms (HTTP control API)", ".service", "add_serve"
    ),
]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; of the lazy commands, only `command` is imported and complete."""
    parser = argparse.ArgumentParser(
        prog="python -m avatar_worker", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    for lazy in LAZY_COMMANDS:
        if lazy.name == command:
            getattr(importlib.import_module(lazy.module, __package__), lazy.function)(sub)
        else:
            sub.add_parser(lazy.name, help=lazy.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    # the top-level parser has no option taking a value: the first word is the command
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    from .offline import AudioInputError

    try:
        return args.func(args)
    except (AvatarError, AudioInputError, EspeakToolError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
