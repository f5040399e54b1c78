"""The Flask app: `events.app.create_app` builds it; each area is a package beside this file.

Nothing is imported here, so importing any module of the app (a model, a service) does not
import the whole app with it.
"""
