"""How the browser tests start Debian's headless Chromium on a machine with no network but loopback.

Without the background-networking flags Chromium keeps trying to reach Google's hosts; as root it
needs --no-sandbox. Importable from any test module (tests/ is on sys.path via its conftest).
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
