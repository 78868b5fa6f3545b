"""The avatar service's build process: `python -m avatar_worker.build_worker ID SIZE OUT`.

Builds one avatar's warm renderer (avatars.build_composer) away from the service's event loop
and at a lower CPU priority, and writes it to OUT for the service to read back
(avatars.write_composer / read_composer). An avatar that cannot be used exits with status
BUILD_EXIT_AVATAR_ERROR and its one-sentence reason as the last line on stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .avatars import (
    BUILD_EXIT_AVATAR_ERROR,
    BUILD_NICE,
    AvatarError,
    build_composer,
    write_composer,
)


def main(argv: list[str]) -> int:
    avatar_id, size, out = argv[0], int(argv[1]), Path(argv[2])
    os.nice(BUILD_NICE)
    try:
        composer = build_composer(avatar_id, size)
    except AvatarError as e:
        print(str(e), file=sys.stderr)
        return BUILD_EXIT_AVATAR_ERROR
    write_composer(composer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
