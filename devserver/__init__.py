"""LiveKit-compatible development server for local development and tests (not for production)."""

__version__ = "1.9.0-dev"  # the livekit-server protocol level the dev server imitates
