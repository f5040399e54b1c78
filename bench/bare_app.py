"""The baselines: a bare Flask page, and a bare Flask form post, served the same way as the product
in the benchmarks.

The form is the floor under a registration POST (bench/bench_registration.py): Flask-WTF's CSRF
check against the session cookie, a name and an email validated, a flashed message and a redirect,
with no database. What a registration costs above it is the product's own."""

import os

from flask import Flask, flash, redirect, render_template_string
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Email, Length

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "bench")


@app.get("/")
def hello():
    return "<!doctype html><title>bare</title><p>Hello</p>"


class PersonForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = StringField(
        "Email", validators=[DataRequired(), Email(check_deliverability=False), Length(max=254)]
    )


FORM_PAGE = """<!doctype html><title>bare form</title>
<form method="post" action="/form">{{ form.csrf_token }}{{ form.name }}{{ form.email }}
<button>Register</button></form>"""


@app.get("/form")
def form_page():
    return render_template_string(FORM_PAGE, form=PersonForm())


@app.post("/form")
def form_post():
    form = PersonForm()
    if not form.validate():
        return render_template_string(FORM_PAGE, form=form), 400
    flash("You're registered!")
    return redirect("/form/done")
