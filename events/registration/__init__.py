"""Registering, holds, the waitlist, cancelling, manage links; the seat rules (seats.py)."""
