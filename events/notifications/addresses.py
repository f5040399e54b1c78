"""The sender's mailbox, as configured in MAIL_DEFAULT_SENDER (used by the sender and in invites)."""

from __future__ import annotations

import re
from email.utils import getaddresses

_ANGLE_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>\s*$")


def sender_mailbox(sender: str) -> tuple[str, str]:
    """(display name, address) of MAIL_DEFAULT_SENDER ("Revival PT, North Loop <hello@clinic>"
    or a bare address). The address in angle brackets wins: a display name with an unquoted
    comma would otherwise be read as two addresses."""
    match = _ANGLE_ADDRESS.search(sender.strip())
    if match:
        return sender.strip()[: match.start()].strip().strip('"').strip(), match.group(1)
    addresses = getaddresses([sender])
    return addresses[0] if addresses else ("", "")


def sender_address(sender: str) -> str:
    return sender_mailbox(sender)[1]
