"""A member's name and email are asked the same way by the booking form and the pass form (one
definition, events/forms.py): the same rules and messages, but for the word saying what the
address is for; and each form keeps its own order (its error summary follows it)."""

from werkzeug.datastructures import MultiDict

from events.passes.forms import BuyPassForm
from events.registration.forms import PersonForm


def errors(form_class, data: dict) -> dict[str, list[str]]:
    form = form_class(formdata=MultiDict(data), meta={"csrf": False})
    form.validate()
    return {name: [str(e) for e in errs] for name, errs in form.errors.items() if name in ("name", "email")}


def test_the_booking_and_pass_forms_refuse_a_name_and_an_email_alike(app):
    with app.test_request_context("/"):
        for data in (
            {"name": "x" * 121, "email": "not-an-address"},
            {"name": "  Ana  ", "email": f"{'a' * 250}@example.com"},
        ):
            assert errors(BuyPassForm, data) == errors(PersonForm, data) != {}
        assert errors(PersonForm, {"name": "", "email": ""}) == {
            "name": ["Please tell us your name."],
            "email": ["Please enter your email, so we can send your confirmation."],
        }
        assert errors(BuyPassForm, {"name": "", "email": ""}) == {
            "name": ["Please tell us your name."],
            "email": ["Please enter your email: your pass is sent there."],
        }
        form = BuyPassForm(formdata=MultiDict({"name": "  Ana  ", "email": " ana@example.com "}))
        assert (form.name.data, form.email.data) == ("Ana", "ana@example.com")


def test_each_form_keeps_its_fields_in_their_order(app):
    with app.test_request_context("/"):
        assert [f.name for f in PersonForm(meta={"csrf": False})][:4] == [
            "session_id",
            "name",
            "email",
            "phone",
        ]
        assert [f.name for f in BuyPassForm(meta={"csrf": False})] == ["name", "email", "code"]
