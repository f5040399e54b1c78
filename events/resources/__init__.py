"""Resources shared after a class: links and uploaded handouts, their files and public addresses.

Admins add them (the staff offering page calls events.resources.services); the follow-up
email links to them; the public blueprint in views.py serves the uploaded files.
"""
