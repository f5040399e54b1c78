"""Emails: the outbox (what to send, once each), what is due (schedule), what each says (content),
and sending it (sender, delivery). Nothing here decides a business rule; the services queue emails."""
