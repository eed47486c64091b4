"""The websocket service: the dashboard page and socket.io fan-out of agent events (read-only)."""
