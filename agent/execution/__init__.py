"""Execution: placing orders safely and folding exchange results into our books."""
