"""The staff side: sign-in and accounts, rosters and check-in, clinic cancellations, and admin
by subject (offerings and their dates, locations, registrations and money, emails, audit).

Each subject has a service module here (the rules, no request objects) and a module of the same
name in views/ (the pages). Who may see what is in access.py.
"""
