"""Consent documents: their versions, which offerings require one, and each registration's acceptances."""
