from flask import Blueprint

bp = Blueprint("payments", __name__)

from events.payments import webhooks  # noqa: E402,F401
