"""WSGI entry point: gunicorn wsgi:app (and the `flask` command's app: FLASK_APP=wsgi.py)."""

import gc

# Start-up creates a few hundred thousand objects that all live as long as the process (modules,
# mapped classes, routes): the collector's passes over them find nothing and cost about a sixth
# of the start-up (issue 17, goal 6). So no collection while the app is built; then the objects
# made so far move to the permanent generation (gc.freeze), out of every later full collection,
# which also keeps gunicorn's forked workers from touching (and so copying) their pages.
gc.disable()
try:
    from events.app import create_app

    app = create_app()
finally:
    gc.enable()
gc.freeze()
