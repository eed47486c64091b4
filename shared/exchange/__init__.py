"""The Exchange port and its adapters."""
