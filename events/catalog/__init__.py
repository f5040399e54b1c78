from flask import Blueprint

bp = Blueprint("catalog", __name__)

from events.catalog import views  # noqa: E402,F401
