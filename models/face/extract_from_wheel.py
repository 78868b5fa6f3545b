"""Re-extract the face models from the mediapipe wheel on PyPI and check their sha256.

mediapipe cannot be installed beside livekit (protobuf < 5, numpy < 2), so only its two
.tflite files are kept here; this script shows where they come from:
  python models/face/extract_from_wheel.py
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    manifest = json.loads((HERE / "MANIFEST.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "mediapipe==0.10.21",
            "--no-deps",
            "-d",
            tmp,
        ]
        subprocess.run(cmd, check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for entry in manifest["files"]:
                data = archive.read(entry["path_in_wheel"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != entry["sha256"]:
                    print(f"sha256 mismatch for {entry['name']}: {digest}", file=sys.stderr)
                    return 1
                (HERE / entry["name"]).write_bytes(data)
                print(f"extracted {entry['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
