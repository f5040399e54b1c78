"""Email addresses as mail servers need them: the sender's mailbox (MAIL_DEFAULT_SENDER), and
a recipient's address with its domain in IDNA (ASCII) form.

An address people type may be internationalized (RFC 6530): `zoe@exämple.com` has a Unicode
domain, which any server can reach once it is written as its IDNA A-label
(`zoe@xn--exmple-cua.com`); `zoë@exämple.com` also has a Unicode local part, which only a server
that offers SMTPUTF8 (RFC 6531) accepts. Such an address is never written as RFC 2047 encoded
words inside the address: no server delivers that.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from email.utils import getaddresses

import idna

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


class UndeliverableAddress(ValueError):
    """An address no mail server could be given (its domain is not a valid IDNA name)."""


@dataclass(frozen=True)
class Recipient:
    header: str  # as the To header shows it (Unicode when SMTPUTF8 is needed anyway)
    envelope: str  # as RCPT TO names it: the domain always in ASCII

    @property
    def needs_smtputf8(self) -> bool:
        """Its local part is not ASCII: only a server offering SMTPUTF8 can take it."""
        return not self.envelope.isascii()


def recipient(address: str) -> Recipient:
    address = address.strip()
    if address.isascii():
        return Recipient(address, address)
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise UndeliverableAddress("not an email address")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise UndeliverableAddress(f"the domain is not a valid internationalized name: {error}") from error
    local = unicodedata.normalize("NFC", local)  # as RFC 6532 asks
    envelope = f"{local}@{ascii_domain}"
    if envelope.isascii():
        return Recipient(envelope, envelope)
    return Recipient(f"{local}@{idna.decode(ascii_domain)}", envelope)


def contact_address(address: str) -> str | None:
    """The clinic's contact address as a Reply-To or an invite's organizer can carry it (its
    domain in IDNA form), or None when there is none or it could not be written in ASCII."""
    if not address or "@" not in address:
        return None
    try:
        contact = recipient(address)
    except UndeliverableAddress:
        return None
    return None if contact.needs_smtputf8 else contact.envelope
