"""The Celery worker: emails from the outbox, reminders, follow-ups and housekeeping."""
