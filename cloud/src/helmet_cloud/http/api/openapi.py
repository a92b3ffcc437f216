"""The OpenAPI document says what the API really answers.

FastAPI documents every 422 as a validation error whose ``detail`` is a list;
this API also answers 422 with one sentence (``{"detail": "no station ST-9"}``)
when a well-formed request names something that does not fit. The spec allows
both, so clients generated from it accept the real answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


def document_sentence_errors(app: FastAPI) -> None:
    """Let a 422's ``detail`` be a list of validation errors or a sentence."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        first = app.openapi_schema is None
        schema = build()  # FastAPI caches it on the app; adjust the cached document once
        if first:
            errors = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError", {})
            detail = errors.get("properties", {}).get("detail")
            if detail is not None and "anyOf" not in detail:
                listed = {k: v for k, v in detail.items() if k != "title"}
                errors["properties"]["detail"] = {"title": "Detail", "anyOf": [listed, {"type": "string"}]}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
