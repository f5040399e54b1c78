#!/usr/bin/env bash
# `make run`: the embedded default (SQLite, Celery over SQLite, the Stripe emulator, emails
# as files), every process under honcho (Procfile.dev). Ctrl+C stops them all and ends here
# with status 0: a stop you asked for is not a failure.
#
# Settings (environment): WEB_PORT (5000), STRIPE_PORT (8420), INSTANCE_PATH (instance/),
# e.g. `make run WEB_PORT=5077 STRIPE_PORT=8477 INSTANCE_PATH=/tmp/demo` beside another copy.
set -u
export FLASK_APP="${FLASK_APP:-wsgi.py}"
export INSTANCE_PATH="${INSTANCE_PATH:-$PWD/instance}"
export WEB_PORT="${WEB_PORT:-5000}"
export STRIPE_PORT="${STRIPE_PORT:-8420}"
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$WEB_PORT}"
if [ -z "${STRIPE_SECRET_KEY:-}" ]; then
  export STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:$STRIPE_PORT}"
fi
mkdir -p "$INSTANCE_PATH"
flask db upgrade || exit
flask seed-demo || exit
site="http://127.0.0.1:$WEB_PORT"
cat <<BANNER

  Schedule:        $site/
  Staff sign-in:   $site/staff/login (demo accounts above)
  Sent emails:     $site/_dev/outbox/
  JSON API:        $site/api/v1/sessions
  Stripe emulator: http://127.0.0.1:$STRIPE_PORT (test card 4242 4242 4242 4242);
                   its payments are kept in $INSTANCE_PATH/localstripe-state.pickle
  Stop everything: Ctrl+C

BANNER
honcho start -f Procfile.dev
status=$?
# 130: honcho stopped everything on Ctrl+C (SIGINT); 143: on SIGTERM.
if [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
  echo "Stopped. Run \`make run\` again to carry on where you left off."
  exit 0
fi
exit "$status"
