"""WSGI entry point: gunicorn wsgi:app"""

from events import create_app

app = create_app()
