"""Interviewer agent: the LiveKit Agents worker that runs one mock interview per dispatch."""
