"""The errors the cloud raises on purpose, under one root.

Each subclass says what kind of failure it is, not how it is shown: the HTTP
layer maps the kinds to status codes in one place
(:mod:`helmet_cloud.http.errors`), the pages show the same sentence, and the
command line prints it. The message is a sentence a person can act on, in English, with its fields
apart (``InvalidError("at most {limit} helmets per pass", limit=4)``): ``str()``
is the English sentence for the API and the logs, and a page translates
``message`` from the catalogue (:mod:`helmet_cloud.i18n`) before it fills in
``fields``. Each also inherits the standard exception it is a kind of, as
gpiozero's do.
"""

from __future__ import annotations


class CloudError(Exception):
    """Root of every error the cloud raises on purpose."""

    def __init__(self, message: str = "", /, **fields: object) -> None:
        super().__init__(message.format(**fields) if fields else message)
        self.message = message
        self.fields = fields


class NotFoundError(CloudError, LookupError):
    """The thing named does not exist (or the caller may not know it does)."""


class ConflictError(CloudError):
    """It exists already, or its state forbids this now (offline, resolved, over the limit)."""


class InvalidError(CloudError, ValueError):
    """The request itself is wrong and will stay wrong: fix the input."""


class GoneError(CloudError):
    """It existed but can no longer be used (an expired pass, a used code)."""


class NotSignedInError(CloudError, PermissionError):
    """Who is asking is not known, or their proof is wrong or stale."""


class ForbiddenError(CloudError, PermissionError):
    """Known, but their role may not do this."""


class TooManyRequestsError(CloudError):
    """Asked too often; ``retry_after`` seconds until the next try can succeed."""

    def __init__(self, message: str, /, *, retry_after: int, **fields: object) -> None:
        super().__init__(message, **fields)
        self.retry_after = retry_after


class UpstreamError(CloudError, ConnectionError):
    """A service the cloud relies on (the broker's security plugin) refused or did not answer."""


class UnavailableError(CloudError, ConnectionError):
    """The cloud cannot do it right now (broker or database away); the same request may succeed later."""
