"""The baseline: a bare Flask page, served the same way as the product in the benchmarks."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "<!doctype html><title>bare</title><p>Hello</p>"
