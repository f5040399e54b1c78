"""WSGI entry point: gunicorn wsgi:app"""

from events.app import create_app

app = create_app()
