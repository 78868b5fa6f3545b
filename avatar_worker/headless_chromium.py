"""How Debian's headless Chromium is started on a machine with no network but loopback.

Without the background-networking flags Chromium keeps trying to reach Google's hosts; as root it
needs --no-sandbox. Used by the browser A/V benchmark and, through tests/chromium_flags.py, by
the browser tests.
"""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
