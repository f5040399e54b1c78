"""Resources: add and remove links and files (admins), and the files' unguessable public addresses.

Every change is written to the audit trail in the same transaction.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from flask import current_app, url_for
from werkzeug.utils import secure_filename

from events import audit
from events.extensions import db
from events.forms import FieldError
from events.models import Offering, Resource, ResourceKind, User


class ResourceError(FieldError):
    """An upload or link refused; the message is for the admin."""


def upload_dir() -> Path:
    """Where uploaded files are kept (UPLOAD_FOLDER, or instance/uploads)."""
    return Path(current_app.config["UPLOAD_FOLDER"] or Path(current_app.instance_path) / "uploads")


def sniff_content_type(head: bytes) -> str | None:
    """What the first bytes say the file is; None unless it is a PDF or a common image."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}


def _next_position(offering: Offering) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.max(Resource.position)).where(Resource.offering_id == offering.id)
        )
        or 0
    ) + 1


def add_link(offering: Offering, title: str, url: str, description: str, actor: User) -> Resource:
    if not re.match(r"^https?://[^\s/]+", url.strip(), re.IGNORECASE):
        raise ResourceError("The link must start with http:// or https://.", "url")
    resource = Resource(
        offering_id=offering.id,
        kind=ResourceKind.LINK,
        title=title,
        url=url.strip(),
        description=description,
        position=_next_position(offering),
    )
    db.session.add(resource)
    db.session.flush()
    audit.record(
        actor.id,
        "resource.created",
        "resource",
        resource.id,
        offering_id=offering.id,
        offering_title=offering.title,
        kind="link",
        title=title,
    )
    db.session.commit()
    return resource


def add_file(
    offering: Offering,
    title: str,
    description: str,
    stream: IO[bytes],
    original_filename: str,
    upload_dir: Path,
    actor: User,
    max_bytes: int,
) -> Resource:
    """Store an uploaded PDF or image under a random name, after checking what it really is."""
    data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ResourceError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.", "file")
    if not data:
        raise ResourceError("The file is empty.", "file")
    content_type = sniff_content_type(data[:16])
    if content_type is None:
        raise ResourceError("Only PDF files and images (PNG, JPEG, GIF, WebP) can be uploaded.", "file")
    upload_dir.mkdir(parents=True, exist_ok=True)
    stored = f"{secrets.token_hex(16)}.{EXTENSIONS[content_type]}"
    (upload_dir / stored).write_bytes(data)
    resource = Resource(
        offering_id=offering.id,
        kind=ResourceKind.FILE,
        title=title,
        description=description,
        stored_filename=stored,
        original_filename=(original_filename or stored)[:255],
        content_type=content_type,
        position=_next_position(offering),
    )
    db.session.add(resource)
    db.session.flush()
    audit.record(
        actor.id,
        "resource.created",
        "resource",
        resource.id,
        offering_id=offering.id,
        offering_title=offering.title,
        title=resource.title,
        kind="file",
        content_type=content_type,
        size=len(data),
    )
    db.session.commit()
    return resource


def delete_resource(resource: Resource, upload_dir: Path, actor: User) -> None:
    audit.record(
        actor.id,
        "resource.deleted",
        "resource",
        resource.id,
        offering_id=resource.offering_id,
        offering_title=resource.offering.title,
        title=resource.title,
    )
    stored = resource.stored_filename
    db.session.delete(resource)
    db.session.commit()
    if stored:
        (upload_dir / stored).unlink(missing_ok=True)


# --- Resource files: unguessable public addresses ---

FILE_KEY = re.compile(r"[0-9a-f]{32}")


def public_filename(resource: Resource) -> str:
    name = secure_filename(resource.original_filename) or resource.stored_filename
    ext = EXTENSIONS.get(resource.content_type, "")
    if ext and not name.lower().endswith("." + ext) and not (ext == "jpg" and name.lower().endswith(".jpeg")):
        name = f"{name}.{ext}"
    return name


def file_key(resource: Resource) -> str:
    """A file's address is its random stored name (128 bits), not its sequential id: handouts
    are shared with the people who came, not with anyone who counts upwards."""
    return resource.stored_filename.split(".", 1)[0]


def file_resource_by_key(key: str) -> Resource | None:
    if not FILE_KEY.fullmatch(key):
        return None
    return db.session.scalar(
        sa.select(Resource).where(
            Resource.kind == ResourceKind.FILE,
            Resource.stored_filename.startswith(key + ".", autoescape=True),
        )
    )


def resource_href(resource: Resource, external: bool = True) -> str:
    """Where a resource is opened: its link, or its uploaded file's address."""
    if resource.kind is ResourceKind.FILE and resource.stored_filename:
        return url_for(
            "resources.resource_file",
            key=file_key(resource),
            filename=public_filename(resource),
            _external=external,
        )
    return resource.url
