"""The read-only JSON API (served under /api/v1)."""
