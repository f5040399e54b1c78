"""The OpenAPI 3.1 document for /api/v1 (kept beside the views it describes)."""

from events.reports.figures import PASS_FIGURES, PEOPLE_FIGURES, SESSION_FIGURES, Figure


def _query(name: str, description: str, schema: dict) -> dict:
    # An empty value (`?to=`, as an HTML form sends an untouched field) means "any", like no value.
    return {
        "name": name,
        "in": "query",
        "required": False,
        "allowEmptyValue": True,
        "description": description + " (empty: any)",
        "schema": schema,
    }


ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "title", "message"],
            "properties": {
                "status": {"type": "integer"},
                "title": {"type": "string"},
                "message": {"type": "string"},
            },
        }
    },
}

LOCATION = {
    "type": "object",
    "required": ["id", "slug", "name", "address", "timezone", "url"],
    "properties": {
        "id": {"type": "integer"},
        "slug": {"type": "string"},
        "name": {"type": "string"},
        "address": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA time zone, e.g. America/Chicago"},
        "url": {"type": "string", "format": "uri"},
    },
}

PRICE_TIER = {
    "type": "object",
    "required": ["name", "description", "name_language", "price_cents"],
    "properties": {
        "name": {
            "type": "string",
            "description": "e.g. Supported, Standard, Community, in the language asked for",
        },
        "description": {"type": "string", "description": "In the same language as name"},
        "name_language": {
            "type": "string",
            "description": "The language of name and description: `en` when the one asked for has "
            "no translation of this tier",
        },
        "price_cents": {"type": "integer", "minimum": 0},
    },
}

SESSION = {
    "type": "object",
    "required": [
        "id",
        "offering",
        "location",
        "instructor",
        "starts_at",
        "ends_at",
        "timezone",
        "status",
        "price_cents",
        "currency",
        "capacity",
        "seats_left",
        "community_seats_left",
        "url",
    ],
    "properties": {
        "id": {"type": "integer"},
        "offering": {
            "type": "object",
            "required": ["id", "slug", "title", "kind", "topic"],
            "properties": {
                "id": {"type": "integer"},
                "slug": {"type": "string"},
                "title": {"type": "string"},
                "title_language": {
                    "type": "string",
                    "description": "The title's language: `en` when the one asked for has no translation",
                },
                "kind": {"type": "string", "enum": ["workshop", "class", "course"]},
                "topic": {"type": "string"},
                "price_tiers": {
                    "type": "array",
                    "description": "Sliding-scale prices a member chooses without proof, in the "
                    "order shown; empty when everyone pays price_cents",
                    "items": {"$ref": "#/components/schemas/PriceTier"},
                },
                "community_seats": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Seats per session (class) or per offering kept at "
                    "community_price_cents until shortly before the start (the number set; "
                    "how many are still kept: community_seats_left)",
                },
                "community_price_cents": {"type": "integer", "minimum": 0},
            },
        },
        "location": {"$ref": "#/components/schemas/Location"},
        "instructor": {"type": ["string", "null"]},
        "starts_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601 with the location's UTC offset",
        },
        "ends_at": {"type": "string", "format": "date-time"},
        "timezone": {"type": "string"},
        "status": {"type": "string", "enum": ["scheduled", "cancelled"]},
        "price_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "capacity": {"type": "integer", "minimum": 0},
        "seats_left": {"type": "integer", "minimum": 0},
        "community_seats_left": {
            "type": "integer",
            "minimum": 0,
            "description": "Of seats_left, how many are still kept at community_price_cents "
            "(per session for a drop-in class, like seats_left; for the whole workshop or course); "
            "0 once they are taken or, shortly before the start, released to general sale. "
            "Anyone else may take seats_left - community_seats_left",
        },
        "url": {"type": "string", "format": "uri"},
    },
}

PASS_PRODUCT = {
    "type": "object",
    "required": [
        "id",
        "name",
        "description",
        "credits",
        "price_cents",
        "currency",
        "validity_days",
        "validity_starts",
        "offering_kinds",
        "offering_ids",
        "location_slugs",
        "good_for",
        "buy_url",
    ],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "credits": {"type": "integer", "minimum": 1, "description": "Credits a pass holds when bought"},
        "price_cents": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "validity_days": {"type": "integer", "minimum": 1},
        "validity_starts": {
            "type": "string",
            "enum": ["purchase", "first_use"],
            "description": "The validity days count from the purchase, or from the first booking with it",
        },
        "offering_kinds": {
            "type": "array",
            "items": {"type": "string", "enum": ["workshop", "class", "course"]},
            "description": "Kinds it is good for; empty: every kind",
        },
        "offering_ids": {"type": "array", "items": {"type": "integer"}, "description": "Empty: any offering"},
        "location_slugs": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Empty: any location",
        },
        "good_for": {
            "type": "string",
            "description": "What it is good for, in words, in the language asked for",
        },
        "buy_url": {"type": "string", "format": "uri"},
    },
}

SESSION_FILTERS = [
    _query("location", "Location slug, e.g. north-loop", {"type": "string"}),
    _query("kind", "Kind of offering", {"type": "string", "enum": ["workshop", "class", "course"]}),
    _query("topic", "Topic, case-insensitive", {"type": "string"}),
    _query("price", "Free or paid offerings only", {"type": "string", "enum": ["free", "paid"]}),
    _query("from", "First day (clinic's time zone), YYYY-MM-DD", {"type": "string", "format": "date"}),
    _query("to", "Last day (clinic's time zone), YYYY-MM-DD", {"type": "string", "format": "date"}),
    _query("q", "Text search in titles, topics and descriptions", {"type": "string", "maxLength": 100}),
    _query(
        "lang",
        "Language of titles, price tier names and error messages, e.g. es (else Accept-Language)",
        {"type": "string"},
    ),
    _query("page", "Page number, from 1", {"type": "integer", "minimum": 1, "maximum": 100000}),
    _query("per_page", "Items per page", {"type": "integer", "minimum": 1, "maximum": 100}),
]

BAD_REQUEST = {
    "description": "A filter could not be understood",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
NOT_FOUND = {
    "description": "No such item",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


RATIO = {
    "type": "object",
    "description": "A share kept as its parts: part of whole (value is null when whole is 0)",
    "required": ["part", "whole", "value"],
    "properties": {
        "part": {"type": "integer", "minimum": 0},
        "whole": {"type": "integer", "minimum": 0},
        "value": {"type": ["number", "null"]},
    },
}


def _figure_schema(figure: Figure) -> dict:
    described = {"description": f"{figure.label}: {figure.definition}"}
    if figure.unit == "percent":
        return {"allOf": [{"$ref": "#/components/schemas/Ratio"}], **described}
    if figure.unit == "days":
        return {"type": ["number", "null"], **described}
    if figure.unit == "money":
        kind = ["integer", "null"] if figure.may_be_empty else "integer"
        return {"type": kind, **described, "description": described["description"] + " In cents."}
    return {"type": "integer", "minimum": 0, **described}


def _figures_object(figures: list[Figure]) -> dict:
    return {
        "type": "object",
        "required": [f.key for f in figures],
        "properties": {f.key: _figure_schema(f) for f in figures},
    }


REPORT = {
    "type": "object",
    "required": [
        "range",
        "currency",
        "breakdown",
        "figures",
        "people",
        "passes",
        "codes_by_partner",
        "rows",
        "definitions",
    ],
    "properties": {
        "range": {
            "type": "object",
            "required": ["from", "to"],
            "properties": {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date", "description": "The last day, included"},
            },
        },
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "breakdown": {
            "type": "string",
            "enum": ["offering", "kind", "topic", "location", "instructor", "week", "month"],
        },
        "figures": _figures_object(SESSION_FIGURES),
        "people": _figures_object(PEOPLE_FIGURES),
        "passes": {
            "description": "Passes and codes, the clinic's (null in an instructor's report)",
            "oneOf": [{"type": "null"}, _figures_object(PASS_FIGURES)],
        },
        "codes_by_partner": {
            "type": "array",
            "description": "Code redemptions in the range, by the codes' partner tag (empty: no partner)",
            "items": {
                "type": "object",
                "required": ["partner_tag", "redemptions", "discount_cents"],
                "properties": {
                    "partner_tag": {"type": "string"},
                    "redemptions": {"type": "integer", "minimum": 0},
                    "discount_cents": {"type": "integer", "minimum": 0},
                },
            },
        },
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "figures"],
                "properties": {"label": {"type": "string"}, "figures": _figures_object(SESSION_FIGURES)},
            },
        },
        "definitions": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["label", "unit", "definition"],
                "properties": {
                    "label": {"type": "string"},
                    "unit": {"type": "string", "enum": ["count", "percent", "money", "days"]},
                    "definition": {"type": "string"},
                },
            },
        },
    },
}

REPORT_FILTERS = [
    _query(
        "preset",
        "Which days: last_4_weeks (the default), this_month, last_month, this_year, or custom (from and to)",
        {"type": "string", "enum": ["last_4_weeks", "this_month", "last_month", "this_year", "custom"]},
    ),
    _query(
        "from",
        "First day, YYYY-MM-DD, each session's day in its location's time zone",
        {"type": "string", "format": "date"},
    ),
    _query(
        "to",
        "Last day (included), YYYY-MM-DD; at most eleven years after from",
        {"type": "string", "format": "date"},
    ),
    _query(
        "by",
        "The breakdown of rows (default: offering)",
        {"type": "string", "enum": ["offering", "kind", "topic", "location", "instructor", "week", "month"]},
    ),
]

UNAUTHORIZED = {
    "description": "Not signed in to the staff side",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
FORBIDDEN = {
    "description": "Signed in, but not as an admin",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def openapi_document(server_url: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Workshops and classes API",
            "version": "1.0.0",
            "description": "Read-only schedule of upcoming sessions, for embedding on the clinic's website.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/sessions": {
                "get": {
                    "operationId": "listSessions",
                    "summary": "Upcoming sessions, soonest first",
                    "parameters": SESSION_FILTERS,
                    "responses": {
                        "200": {
                            "description": "A page of sessions",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data", "meta", "links"],
                                        "properties": {
                                            "data": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Session"},
                                            },
                                            "meta": {
                                                "type": "object",
                                                "required": ["page", "per_page", "total", "pages"],
                                                "properties": {
                                                    "page": {"type": "integer"},
                                                    "per_page": {"type": "integer"},
                                                    "total": {"type": "integer"},
                                                    "pages": {"type": "integer"},
                                                },
                                            },
                                            "links": {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": BAD_REQUEST,
                    },
                }
            },
            "/sessions/{session_id}": {
                "get": {
                    "operationId": "getSession",
                    "summary": "One session",
                    "parameters": [
                        {"name": "session_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                        _query(
                            "lang",
                            "Language of the title and price tier names, e.g. es (else Accept-Language)",
                            {"type": "string"},
                        ),
                    ],
                    "responses": {
                        "200": {
                            "description": "The session",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {"data": {"$ref": "#/components/schemas/Session"}},
                                    }
                                }
                            },
                        },
                        "404": NOT_FOUND,
                    },
                }
            },
            "/locations": {
                "get": {
                    "operationId": "listLocations",
                    "summary": "The clinic's locations",
                    "responses": {
                        "200": {
                            "description": "Every active location",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {
                                            "data": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Location"},
                                            }
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/pass-products": {
                "get": {
                    "operationId": "listPassProducts",
                    "summary": "The class passes on sale and their prices (never anyone's pass or balance)",
                    "parameters": [
                        _query("lang", "Language of the good_for words, e.g. es", {"type": "string"})
                    ],
                    "responses": {
                        "200": {
                            "description": "Every pass product on sale, in the clinic's order",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {
                                            "data": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/PassProduct"},
                                            }
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/reports": {
                "get": {
                    "operationId": "getReport",
                    "summary": "Report figures for a range of days (admins only, never public)",
                    "description": (
                        "Sessions, attendance, waitlist, people and money, in total and broken down, "
                        "and the clinic's passes and codes (credits sold and used, revenue per credit "
                        "used, code redemptions by partner tag), as on the staff reports page. Money in "
                        "integer cents of the clinic's currency."
                    ),
                    "security": [{"staffSession": []}],
                    "parameters": REPORT_FILTERS,
                    "responses": {
                        "200": {
                            "description": "The report",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["data"],
                                        "properties": {"data": {"$ref": "#/components/schemas/Report"}},
                                    }
                                }
                            },
                        },
                        "400": BAD_REQUEST,
                        "401": UNAUTHORIZED,
                        "403": FORBIDDEN,
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Session": SESSION,
                "PriceTier": PRICE_TIER,
                "Location": LOCATION,
                "PassProduct": PASS_PRODUCT,
                "Error": ERROR,
                "Report": REPORT,
                "Ratio": RATIO,
            },
            "securitySchemes": {
                "staffSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "The cookie of an admin signed in at /staff/login",
                }
            },
        },
    }
