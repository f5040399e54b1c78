"""Public: uploaded resource files, at addresses shared with attendees by email."""

from flask import Blueprint, abort, redirect, send_file
from flask.typing import ResponseReturnValue

from events.resources import services

bp = Blueprint("resources", __name__)


@bp.get("/resources/<key>/<filename>")
def resource_file(key: str, filename: str) -> ResponseReturnValue:
    resource = services.file_resource_by_key(key)
    if resource is None:
        abort(404)
    if filename != services.public_filename(resource):
        return redirect(services.resource_href(resource, external=False))
    path = services.upload_dir() / resource.stored_filename
    if not path.is_file():
        abort(404)
    response = send_file(
        path,
        mimetype=resource.content_type,
        as_attachment=False,
        download_name=services.public_filename(resource),
        max_age=3600,
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
