"""The browser tests' Chromium: the product's headless flags plus a fake microphone and camera.

Importable from any test module (tests/ is on sys.path via its conftest).
"""

from avatar_worker.headless_chromium import CHROMIUM, CHROMIUM_ARGS

FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "FAKE_MEDIA"]
