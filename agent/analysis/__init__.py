"""Analysts: turn a signal plus market context into a validated Decision."""
