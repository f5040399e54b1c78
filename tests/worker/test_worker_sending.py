"""The sender and delivery, in process, against a real (aiosmtpd) SMTP server."""

from __future__ import annotations

import threading
from datetime import timedelta

import icalendar
import pytest
import sqlalchemy as sa

from events.models import EmailStatus, OutboxEmail, utcnow
from events.notifications.delivery import claim_due, deliver_due, reclaim_stale
from tests.factories import make_clinic, workshop
from tests.helpers import wait_until


def rows(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboxEmail).order_by(OutboxEmail.id)).all()


def test_confirmation_email_is_multipart_with_ics(db, smtp, book):
    offering = workshop(title="Healthy Backs", what_to_bring="Comfortable clothes")
    db.session.commit()
    book(offering, "ana@example.com")

    stats = deliver_due()
    assert stats.sent == 1
    [(rcpt, msg)] = smtp.messages
    assert rcpt == "ana@example.com"
    assert msg["Subject"].startswith("You're registered for ")
    [row] = rows(db)
    assert row.status == EmailStatus.SENT and row.sent_at is not None
    assert msg["Message-ID"].startswith(f"<outbox-{row.id}.") and msg["Message-ID"].endswith("@clinic.test>")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Healthy Backs" in text and "Comfortable clothes" in text
    assert "http://127.0.0.1:5000/manage/" in text and 'href="http://127.0.0.1:5000/manage/' in html
    assert "<strong>Healthy Backs</strong>" in html
    [ics] = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    cal = icalendar.Calendar.from_ical(
        ics.get_content() if isinstance(ics.get_content(), str) else ics.get_payload(decode=True)
    )
    [event] = [c for c in cal.walk("VEVENT")]
    session = offering.sessions[0]
    assert event.decoded("dtstart") == session.local_start
    assert event.decoded("dtend") == session.local_end
    assert event["dtstart"].params["TZID"] == "America/Chicago"
    assert str(event["location"]).startswith(session.location.name)


def test_html_is_escaped(db, smtp, book):
    offering = workshop(title="<script>alert(1)</script> & friends")
    db.session.commit()
    book(offering, "esc@example.com")
    deliver_due()
    [(_, msg)] = smtp.messages
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script> & friends" in msg.get_body(("plain",)).get_content()


def test_permanent_failure_for_one_recipient_others_sent(db, smtp, book):
    offering = workshop()
    db.session.commit()
    for email in ("a@example.com", "bad@example.com", "c@example.com"):
        book(offering, email)
    smtp.handler.reject["bad@example.com"] = "550 5.1.1 No such user"

    stats = deliver_due()
    assert (stats.sent, stats.failed, stats.retried) == (2, 1, 0)
    by_email = {r.to_email: r for r in rows(db)}
    assert by_email["bad@example.com"].status == EmailStatus.FAILED
    assert "550" in by_email["bad@example.com"].last_error
    assert by_email["a@example.com"].status == by_email["c@example.com"].status == EmailStatus.SENT
    assert sorted(r for r, _ in smtp.messages) == ["a@example.com", "c@example.com"]
    # Not retried: a later sweep sends nothing more.
    assert deliver_due(now=utcnow() + timedelta(days=2)).claimed == 0


def test_temporary_failure_backs_off_then_sends(db, smtp, book):
    offering = workshop()
    db.session.commit()
    book(offering, "later@example.com")
    smtp.handler.reject_all = "451 4.3.0 Try again later"

    stats = deliver_due()
    assert stats.retried == 1 and not smtp.messages
    [row] = rows(db)
    assert row.status == EmailStatus.PENDING and row.attempts == 1 and "451" in row.last_error
    assert row.send_after > utcnow() + timedelta(seconds=50)

    smtp.handler.reject_all = None
    assert deliver_due().claimed == 0  # not due yet
    assert deliver_due(now=row.send_after + timedelta(seconds=1)).sent == 1
    assert len(smtp.to("later@example.com")) == 1


def test_smtp_down_then_up_every_email_arrives_once(db, smtp, book):
    offering = workshop(capacity=20)
    db.session.commit()
    emails = [f"p{i}@example.com" for i in range(5)]
    for email in emails:
        book(offering, email)
    smtp.stop()
    stats = deliver_due()
    assert stats.sent == 0 and stats.retried >= 1
    assert {r.status for r in rows(db)} == {EmailStatus.PENDING}

    smtp.start()
    later = utcnow() + timedelta(hours=2)
    deliver_due(now=later)
    assert sorted(r for r, _ in smtp.messages) == sorted(emails)
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def test_two_concurrent_sweeps_send_each_email_once(app, db, smtp, book):
    offering = workshop(capacity=60)
    db.session.commit()
    emails = [f"c{i}@example.com" for i in range(40)]
    for email in emails:
        book(offering, email)
    db.session.remove()

    barrier = threading.Barrier(3)
    results = []

    def sweep():
        with app.app_context():
            barrier.wait()
            results.append(deliver_due(batch_size=5))

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 40
    assert sorted(r for r, _ in smtp.messages) == sorted(emails)
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def test_the_workers_concurrent_delivery_sends_each_email_once(app, db, smtp, book):
    from events.notifications.delivery import deliver_due_concurrently

    offering = workshop(capacity=80)
    db.session.commit()
    emails = [f"t{i}@example.com" for i in range(60)]
    for email in emails:
        book(offering, email)
    db.session.remove()

    stats = deliver_due_concurrently(threads=3, batch_size=4)

    assert (stats.sent, stats.failed) == (60, 0)
    assert sorted(r for r, _ in smtp.messages) == sorted(emails)
    assert len({m["Message-ID"] for _, m in smtp.messages}) == 60
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def test_claims_are_disjoint_and_stale_claims_return(db, smtp, book):
    offering = workshop()
    db.session.commit()
    for email in ("x@example.com", "y@example.com"):
        book(offering, email)
    now = utcnow()
    first = claim_due(now, limit=1)
    second = claim_due(now, limit=5)
    assert len(first) == 1 and len(second) == 1 and set(first).isdisjoint(second)
    assert claim_due(now) == []
    # A worker killed mid-batch: its claims return once their lease (20 s) runs out, then are
    # sent once.
    assert reclaim_stale(now + timedelta(seconds=19)) == 0
    assert reclaim_stale(now + timedelta(seconds=21)) == 2
    assert deliver_due(now=now + timedelta(seconds=21)).sent == 2
    assert len(smtp.messages) == 2


def test_a_claim_made_before_leases_returns_after_the_old_timeout(db, smtp, book):
    offering = workshop()
    db.session.commit()
    book(offering, "old@example.com")
    now = utcnow()
    [row_id] = claim_due(now)
    db.session.execute(sa.update(OutboxEmail).values(lease_expires_at=None))  # as an older worker claimed it
    db.session.commit()
    assert reclaim_stale(now + timedelta(minutes=9)) == 0
    assert reclaim_stale(now + timedelta(minutes=11)) == 1


def test_a_live_worker_slower_than_its_lease_keeps_its_claim(app, db, smtp, book, monkeypatch):
    """Each message takes longer than the whole lease; another worker sweeping all the while
    finds nothing to reclaim, and every email goes out once."""
    monkeypatch.setitem(app.config, "OUTBOX_CLAIM_LEASE_SECONDS", 2.0)
    smtp.handler.delay = 2.5
    offering = workshop()
    db.session.commit()
    emails = [f"slow{i}@example.com" for i in range(3)]
    for email in emails:
        book(offering, email)
    db.session.remove()

    slow = []
    worker = threading.Thread(target=lambda: slow.append(_deliver_in(app)))
    worker.start()
    wait_until(lambda: {r.status for r in rows(db)} == {EmailStatus.SENDING}, what="the slow worker's claim")
    db.session.remove()
    others = []
    while worker.is_alive():  # the other worker sweeps every 0.1 s until the slow one is done
        others.append(_deliver_in(app))
        worker.join(timeout=0.1)

    assert [s.sent for s in slow] == [3]
    assert sum(s.claimed + s.reclaimed for s in others) == 0
    assert sorted(r for r, _ in smtp.messages) == sorted(emails)
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def _deliver_in(app):
    with app.app_context():
        return deliver_due()


@pytest.mark.real_commits  # the sender marks each email sent on a connection of its own
def test_file_transport_writes_eml(app, db, book, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_SERVER", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    offering = workshop()
    db.session.commit()
    book(offering, "file@example.com")
    assert deliver_due().sent == 1
    [eml] = list(tmp_path.glob("*.eml"))
    assert b"file@example.com" in eml.read_bytes()

    client = app.test_client()
    listing = client.get("/_dev/outbox/")
    assert listing.status_code == 200 and eml.name in listing.get_data(as_text=True)
    page = client.get(f"/_dev/outbox/{eml.name}")
    assert page.status_code == 200 and "You&#39;re registered" in page.get_data(as_text=True)
    assert client.get("/_dev/outbox/..%2Fx.eml").status_code == 404


def test_non_ascii_subject_and_body_round_trip(db, smtp, book):
    """The sender writes MIME bytes itself: encoded headers and bodies must parse back exactly."""
    title = "Café posture – ünïcode " + "long title " * 6
    make_clinic(email_subjects="titled")  # the clinic's choice: the title in the subject
    offering = workshop(title=title)
    db.session.commit()
    book(offering, "u@example.com")
    assert deliver_due().sent == 1
    [(_, msg)] = smtp.messages
    assert msg["Subject"] == f"You're registered: {title}".strip()
    assert title.strip() in msg.get_body(("plain",)).get_content()
    assert msg.get_content_type() == "multipart/mixed"
    [row] = rows(db)
    assert msg["Message-ID"].startswith(f"<outbox-{row.id}.")


def test_a_worker_that_cannot_renew_its_claim_stops_before_it_lapses(app, db, smtp, book, monkeypatch):
    """Renewals failing (the worker lost the database, say): it sends nothing once less than
    half a lease is left and hands the rest back, so nobody else can be sending them too."""
    from events.notifications import delivery

    monkeypatch.setitem(app.config, "OUTBOX_CLAIM_LEASE_SECONDS", 1.0)
    monkeypatch.setattr(delivery._Lease, "_renew_until_stopped", lambda self: None)
    smtp.handler.delay = 0.3
    offering = workshop()
    db.session.commit()
    emails = [f"cut{i}@example.com" for i in range(6)]
    for email in emails:
        book(offering, email)

    first = deliver_due(max_batches=1)
    assert first.claimed == 6 and 1 <= first.sent < 6
    released = [r for r in rows(db) if r.status == EmailStatus.PENDING]
    assert len(released) == 6 - first.sent and all(r.claimed_at is None for r in released)
    smtp.handler.delay = 0.0
    assert deliver_due().sent == 6 - first.sent
    assert sorted(r for r, _ in smtp.messages) == sorted(emails)


def test_a_worker_whose_claim_was_reclaimed_while_it_stalled_sends_nothing_more(
    app, db, smtp, book, monkeypatch
):
    """Worker A claims three emails, then stalls (its database link down, or the process
    frozen) past its 1 s lease: no renewal, its first render stuck. Worker B reclaims the rows
    and sends them. When A wakes, its renewal matches no row and A must send nothing: each
    address gets exactly one message."""
    from events.notifications import delivery, sender

    monkeypatch.setitem(app.config, "OUTBOX_CLAIM_LEASE_SECONDS", 1.0)
    offering = workshop()
    db.session.commit()
    emails = [f"stall{i}@example.com" for i in range(3)]
    for email in emails:
        book(offering, email)
    db.session.remove()

    # The stalls apply to worker A's thread and its lease thread only, never to B.
    b_done, renewed = threading.Event(), threading.Event()
    lease_init, renew_until_stopped = delivery._Lease.__init__, delivery._Lease._renew_until_stopped
    render = sender.Renderer.render

    class RenewalCycles(threading.Event):
        """The lease thread's pause between renewals: its second pause means the first
        renewal is over (whatever it found)."""

        pauses = 0

        def wait(self, timeout=None):
            self.pauses += 1
            if self.pauses == 2:
                renewed.set()
            return super().wait(timeout)

    def named_lease(lease, *args, **kwargs):
        lease_init(lease, *args, **kwargs)
        if threading.current_thread().name == "worker-a":
            lease.thread.name = "worker-a-lease"
            lease.stopped = RenewalCycles()

    def stalled_renewals(lease):
        if threading.current_thread().name == "worker-a-lease":
            b_done.wait(30)  # no renewal gets through while A is cut off
        renew_until_stopped(lease)

    def stalled_first_render(renderer, row, content):
        if threading.current_thread().name == "worker-a" and not renewed.is_set():
            b_done.wait(30)
            renewed.wait(30)  # A wakes once its lease thread has renewed
        return render(renderer, row, content)

    monkeypatch.setattr(delivery._Lease, "__init__", named_lease)
    monkeypatch.setattr(delivery._Lease, "_renew_until_stopped", stalled_renewals)
    monkeypatch.setattr(sender.Renderer, "render", stalled_first_render)
    try:
        a_stats = []
        worker_a = threading.Thread(target=lambda: a_stats.append(_deliver_in(app)), name="worker-a")
        worker_a.start()

        def lapsed():
            batch = rows(db)
            return {r.status for r in batch} == {EmailStatus.SENDING} and max(
                r.lease_expires_at for r in batch
            ) < utcnow()

        wait_until(lapsed, what="A to hold the batch, its lease run out")
        db.session.remove()
        b_stats = _deliver_in(app)
        b_done.set()
        worker_a.join(30)
        assert not worker_a.is_alive()
    finally:
        b_done.set()
        renewed.set()

    assert (b_stats.reclaimed, b_stats.sent) == (3, 3)
    assert a_stats[0].sent == 0
    for email in emails:
        assert len(smtp.to(email)) == 1, email
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def test_a_mark_that_matches_no_row_stops_the_batch(db, smtp, book, monkeypatch):
    """Right after the first message goes out, the whole batch is claimed by another worker:
    the 'sent' mark finds no row under this claim, so this worker stops there."""
    from events.notifications import sender

    offering = workshop()
    db.session.commit()
    for i in range(3):
        book(offering, f"taken{i}@example.com")
    send = sender.SmtpTransport.send
    other_claim = utcnow() + timedelta(seconds=1)

    def send_then_lose_the_claim(transport, message, to, row_id, **kwargs):
        result = send(transport, message, to, row_id, **kwargs)
        with db.engine.begin() as conn:  # as another worker's claim, once this one lapsed
            conn.execute(sa.update(OutboxEmail).values(claimed_at=other_claim))
        return result

    monkeypatch.setattr(sender.SmtpTransport, "send", send_then_lose_the_claim)
    stats = deliver_due()

    assert (stats.claimed, stats.sent) == (3, 1)
    assert len(smtp.messages) == 1
    assert {(r.status, r.claimed_at) for r in rows(db)} == {(EmailStatus.SENDING, other_claim)}


def test_a_crash_between_the_body_and_the_end_of_data_sends_that_email_once_later(
    app, db, smtp, book, monkeypatch
):
    """The next email's envelope and body go out while the previous 'sent' mark commits; only
    its end of data waits for that mark. A crash right there (an exception injected once the
    body is on the wire, before the '.'): the server has accepted nothing more, the row is still
    under the dead claim (not sent), and once the lease has run out it goes out exactly once."""
    from events.notifications import delivery, sender

    offering = workshop()
    db.session.commit()
    emails = [f"crash{i}@example.com" for i in range(3)]
    for email in emails:
        book(offering, email)
    [first, second, _] = rows(db)

    written: list[bytes] = []  # what the sender wrote to the SMTP socket, write by write
    socket_send = sender._WithheldEndSMTP.send

    def recorded_send(smtp_client, data):
        written.append(data if isinstance(data, bytes) else data.encode("ascii"))
        return socket_send(smtp_client, data)

    ready = delivery._ready_to_end
    gates: list[int] = []

    def crash_at_the_second_end(marks, lease, row_id):
        ready(marks, lease, row_id)  # the first email's mark is confirmed here
        gates.append(row_id)
        if row_id == second.id:
            body = written[-1]  # the body is out, the end of data is not
            assert b"To: crash1@example.com" in body and body.endswith(b"\r\n")
            assert not body.endswith(b"\r\n.\r\n")
            raise RuntimeError("the worker died here")

    monkeypatch.setattr(sender._WithheldEndSMTP, "send", recorded_send)
    monkeypatch.setattr(delivery, "_ready_to_end", crash_at_the_second_end)
    with pytest.raises(RuntimeError, match="the worker died here"):
        deliver_due()
    db.session.rollback()

    assert gates == [first.id, second.id]
    assert [r for r, _ in smtp.messages] == ["crash0@example.com"]
    assert [r.status for r in rows(db)] == [EmailStatus.SENT, EmailStatus.SENDING, EmailStatus.SENDING]

    monkeypatch.setattr(delivery, "_ready_to_end", ready)
    later = deliver_due(now=utcnow() + timedelta(seconds=app.config["OUTBOX_CLAIM_LEASE_SECONDS"] + 1))
    assert (later.reclaimed, later.sent) == (2, 2)
    for email in emails:
        assert len(smtp.to(email)) == 1, email
    assert {r.status for r in rows(db)} == {EmailStatus.SENT}


def test_the_end_held_back_changes_no_byte_of_what_the_server_receives(smtp):
    """The body and its end of data go out in two writes, with the gate between: the server
    receives what plain smtplib delivers, lines starting with a dot (stuffed, then unstuffed)
    included."""
    import smtplib

    from events.notifications import sender

    message = (
        b"Subject: dots\r\nTo: a@example.com\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nlast line without end"
    )
    with smtplib.SMTP("127.0.0.1", smtp.port) as plain:
        plain.sendmail("hello@clinic.test", ["plain@example.com"], message)
    gates = []
    with sender._WithheldEndSMTP("127.0.0.1", smtp.port) as held:
        held.before_end = lambda: gates.append(len(smtp.messages))
        held.sendmail("hello@clinic.test", ["held@example.com"], message)
    assert gates == [1]  # called once, before this message was accepted
    [(_, plain_bytes, _), (_, held_bytes, _)] = smtp.handler.envelopes
    assert held_bytes == plain_bytes
    assert b"\r\n.leading dot\r\n..two dots\r\n.\r\n" in held_bytes
