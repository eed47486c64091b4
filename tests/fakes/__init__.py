"""Local fakes of the external services the platform talks to (real HTTP on 127.0.0.1)."""
