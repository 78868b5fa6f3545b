"""Interview API and browser client."""
