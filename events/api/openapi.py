"""The OpenAPI 3.1 document for /api/v1 (kept beside the views it describes)."""


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
        "url": {"type": "string", "format": "uri"},
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
        "lang", "Language of titles and error messages, e.g. es (else Accept-Language)", {"type": "string"}
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
                        {"name": "session_id", "in": "path", "required": True, "schema": {"type": "integer"}}
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
        },
        "components": {"schemas": {"Session": SESSION, "Location": LOCATION, "Error": ERROR}},
    }
