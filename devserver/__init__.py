"""LiveKit-compatible development server for local development and tests (not for production)."""
