"""Avatar worker: turns the interviewer's speech into a lip-synced face, offline or in a room."""
