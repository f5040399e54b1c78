"""flask seed-demo, flask sweep, flask anonymise-expired and flask create-user."""

import secrets
from pathlib import Path

import click
import sqlalchemy as sa
from flask import Flask, current_app

from events.extensions import db
from events.housekeeping import run_housekeeping, run_pass_expiry
from events.models import Role, User
from events.privacy.retention import anonymise_expired


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Load the demo clinic, its locations, instructors and the next 8 weeks. Idempotent."""
        from events.demo import seed_demo  # only this command needs the demo's data (start-up time)

        accounts_file = Path(current_app.instance_path) / "demo-accounts.json"
        click.echo(seed_demo(accounts_file=accounts_file))

    @app.cli.command("sweep")
    def sweep_command() -> None:
        """Release lapsed holds and offers, send pending refunds, reconcile open payments."""
        done = run_housekeeping()
        if done is None:
            # A distinct exit status, so a cron job can tell "skipped" from "done".
            click.echo(
                "Another sweep is running (beat's housekeeping, or another host); try again.", err=True
            )
            raise SystemExit(75)  # EX_TEMPFAIL
        click.echo(
            f"Released lapsed seats in {done['pools']} pools; sent {done['refunds']} refunds;"
            f" re-read {done['payments']} payments."
        )

    @app.cli.command("expire-passes")
    def expire_passes_command() -> None:
        """Expire what is left on class passes past their expiry (beat runs it every sweep)."""
        done = run_pass_expiry()
        if done is None:
            click.echo("Another host is running it; try again.", err=True)
            raise SystemExit(75)  # EX_TEMPFAIL
        click.echo(f"Expired {done['expired']} class passes.")

    @app.cli.command("anonymise-expired")
    def anonymise_expired_command() -> None:
        """Anonymise the people whose last session is older than RETENTION_MONTHS (beat runs it nightly)."""
        run = anonymise_expired()
        if run is None:
            click.echo("Another host is running it; try again.", err=True)
            raise SystemExit(75)  # EX_TEMPFAIL
        click.echo(
            f"Anonymised {run.people} people past {current_app.config['RETENTION_MONTHS']} months: "
            f"{run.registrations} registrations, {run.waitlist_entries} waitlist places, "
            f"{run.passes} class passes."
        )

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
    @click.option("--name", default="", help="Display name (defaults to the email's local part).")
    @click.option("--password", default=None, help="Omit to be prompted; '-' generates one and prints it.")
    def create_user_command(email: str, role: str, name: str, password: str | None) -> None:
        """Create a staff user, or update the role and password of an existing one."""
        email = email.strip().lower()
        if "@" not in email:
            raise click.BadParameter("must be an email address", param_hint="--email")
        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        elif password == "-":
            password = secrets.token_urlsafe(12)
            click.echo(f"Generated password: {password}")
        if len(password) < 8:
            raise click.BadParameter("must be at least 8 characters", param_hint="--password")
        user = db.session.scalar(sa.select(User).where(User.email == email))
        created = user is None
        if user is None:
            user = User(email=email, name=name or email.split("@")[0], role=Role(role))
            db.session.add(user)
        else:
            user.role = Role(role)
            if name:
                user.name = name
        user.set_password(password)
        db.session.commit()
        click.echo(f"{'Created' if created else 'Updated'} {role} {email}")
