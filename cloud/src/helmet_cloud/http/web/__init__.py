"""The pages people use, served by the cloud: staff dashboard, technician pages, resident phone pages.

Server-rendered Jinja2 with a little plain JavaScript (live updates, the pass
countdown, the phone's location); every asset is in ``static/``, nothing comes from a CDN.
See docs/web.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from helmet_cloud.http.web import resident, staff, tech
from helmet_cloud.http.web.pages import PageError
from helmet_cloud.http.web.render import render
from helmet_cloud.http.web.session import LoginRequiredError, same_site_form

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI, *, api_docs: bool) -> None:
    """Add the pages, their static files and their error pages to the API application.

    Every POST form of the pages, the sign-in forms too, must come from this site (``session.same_site_form``).
    """
    for module in (staff, tech, resident):
        app.include_router(module.router, dependencies=[Depends(same_site_form)])
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/staff/", status_code=307)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        """Browsers ask for /favicon.ico whatever the pages link (they link static/favicon.svg)."""
        return RedirectResponse("/static/favicon.svg", status_code=301)

    if api_docs:

        @app.get("/docs", include_in_schema=False)
        def swagger_ui(request: Request) -> Response:
            """Swagger UI from ``static/vendor`` (no CDN), under the pages' Content-Security-Policy."""
            return render(request, "api_docs.html")

    @app.exception_handler(LoginRequiredError)
    async def _login(_req: Request, exc: LoginRequiredError) -> Response:
        return RedirectResponse(exc.login_url, status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.message, "params": exc.params},
            status_code=exc.status_code,
        )
