"""The review desk's HTTP face: server-rendered pages (Jinja2) and a small JSON API.

Pages answer an unauthenticated request with a redirect to the login page; `/api/...` answers
401. Every POST carries the session's CSRF token (the login form a double-submit cookie), and
the session cookie is HttpOnly and SameSite=Strict.
"""

# No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
import hmac
import secrets
import time
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import cv2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from cloud.decode import BadScanError, decode_scan, normalise_content_type
from cloud.review_desk.accounts import Session
from cloud.review_desk.desk import KEYS, ReviewDesk
from cloud.store import DecisionConflictError, ReviewCase, UnknownCaseError
from shared.errors import EdgewardError

HERE = Path(__file__).parent
SESSION_COOKIE = "edgeward_desk"
LOGIN_COOKIE = "edgeward_desk_login"
MAX_FORM_BYTES = 16 * 1024
PER_PAGE = 50
_BROWSER_IMAGES = ("image/jpeg", "image/png")
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'",
}
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["utc"] = lambda t: time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise EdgewardError(f"form of {len(body)} bytes exceeds {MAX_FORM_BYTES}; shorten the note")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


@lru_cache(maxsize=16)
def _browser_png(case_id: str, data: bytes, content_type: str) -> bytes:
    """DICOM or TIFF as a full-resolution PNG a browser shows (cached: cases do not change)."""
    image = decode_scan(data, content_type, case_id)
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise BadScanError(f"case {case_id}: the scan could not be re-encoded as PNG")
    return bytes(png)


def create_desk_app(desk: ReviewDesk) -> FastAPI:
    """The desk as an ASGI app; mount it (e.g. at /desk) or serve it on its own."""
    app = FastAPI(title="edgeward review desk", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def session(request: Request) -> Session | None:
        return desk.accounts.session(request.cookies.get(SESSION_COOKIE, ""))

    def to_login(request: Request) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{_base(request)}/login?next={quote(here)}", 303)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.update(base=_base(request), keys=KEYS)
        return templates.TemplateResponse(request, name, ctx, status_code=status, headers=_HEADERS)

    def csrf_ok(sess: Session, form: dict[str, str]) -> bool:
        return hmac.compare_digest(form.get("csrf", ""), sess.csrf)

    @app.get("/login")
    async def login_form(request: Request, next: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        resp = page(request, "login.html", csrf=token, next=next, error="")
        _cookie(resp, request, LOGIN_COOKIE, token, 600)
        return resp

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        sent = request.cookies.get(LOGIN_COOKIE, "")
        nxt = form.get("next", "")
        if not sent or not hmac.compare_digest(form.get("csrf", ""), sent):
            return page(request, "login.html", 403, csrf=sent, next=nxt, error="The form expired; "
                        "log in again.")  # fmt: skip
        user = desk.accounts.authenticate(form.get("name", ""), form.get("password", ""))
        if user is None:
            return page(request, "login.html", 401, csrf=sent, next=nxt,
                        error="Unknown name or wrong password.")  # fmt: skip
        token, _ = desk.accounts.open_session(user)
        base = _base(request)
        # only a path of this desk: an open redirect would hand the session to another site
        target = nxt if nxt.startswith(f"{base}/") and not nxt.startswith("//") else f"{base}/"
        resp = RedirectResponse(target, 303)
        _cookie(resp, request, SESSION_COOKIE, token, int(desk.accounts.session_ttl_s))
        resp.delete_cookie(LOGIN_COOKIE, path=base or "/")
        return resp

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        sess = session(request)
        if sess is not None and csrf_ok(sess, await _form(request)):
            desk.accounts.close_session(request.cookies.get(SESSION_COOKIE, ""))
        resp = RedirectResponse(f"{_base(request)}/login", 303)
        resp.delete_cookie(SESSION_COOKIE, path=_base(request) or "/")
        return resp

    @app.get("/")
    async def queue(request: Request, page_no: int = 1) -> Response:
        sess = session(request)
        if sess is None:
            return to_login(request)
        q = desk.records.queue(sess.user.name, page_no, PER_PAGE)
        return page(request, "queue.html", sess=sess, q=q)

    @app.get("/next")
    async def next_case(request: Request) -> Response:
        sess = session(request)
        if sess is None:
            return to_login(request)
        case_id = desk.records.next_case(sess.user.name)
        target = f"/cases/{case_id}" if case_id else "/?done=1"
        return RedirectResponse(f"{_base(request)}{target}", 303)

    @app.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: str) -> Response:
        sess = session(request)
        if sess is None:
            return to_login(request)
        return _case_page(request, sess, case_id)

    def _case_page(
        request: Request, sess: Session, case_id: str, status: int = 200, error: str = ""
    ) -> Response:
        try:
            case = desk.store.case(case_id)
        except UnknownCaseError as exc:
            return page(request, "error.html", 404, sess=sess, error=str(exc))
        result = desk.store.get(case.scan_id)
        return page(
            request,
            "case.html",
            status,
            sess=sess,
            case=case,
            result=result,
            edge=desk.records.edge_event(case.scan_id),
            findings=case.edge_findings,
            trail=desk.records.trail(case_id),
            second=desk.records.second_opinion(case_id),
            error=error,
        )

    @app.get("/cases/{case_id}/scan")
    async def scan(request: Request, case_id: str) -> Response:
        if session(request) is None:
            return to_login(request)
        try:
            case = desk.store.case(case_id)
            return _image(case)
        except EdgewardError as exc:
            return Response(str(exc), 404 if isinstance(exc, UnknownCaseError) else 415)

    @app.get("/cases/{case_id}/gradcam.png")
    async def gradcam(request: Request, case_id: str) -> Response:
        if session(request) is None:
            return to_login(request)
        try:
            case = desk.store.case(case_id)
        except UnknownCaseError as exc:
            return Response(str(exc), 404)
        return Response(case.heatmap_png, media_type="image/png", headers=_HEADERS)

    @app.post("/cases/{case_id}/decision")
    async def decide(request: Request, case_id: str) -> Response:
        sess = session(request)
        if sess is None:
            return to_login(request)
        try:
            form = await _form(request)
        except EdgewardError as exc:
            return _case_page(request, sess, case_id, 413, str(exc))
        if not csrf_ok(sess, form):
            return _case_page(request, sess, case_id, 403, "The form expired (CSRF token); "
                              "decide again.")  # fmt: skip
        grade = form.get("grade", "")
        try:
            await desk.decide(
                sess.user,
                case_id,
                form.get("outcome", ""),
                int(grade) if grade.isdigit() else None,
                form.get("note", "").strip(),
            )
        except UnknownCaseError as exc:
            return page(request, "error.html", 404, sess=sess, error=str(exc))
        except EdgewardError as exc:
            status = 409 if isinstance(exc, DecisionConflictError) else 400
            return _case_page(request, sess, case_id, status, str(exc))
        return RedirectResponse(f"{_base(request)}/next", 303)

    @app.get("/audit")
    async def audit(request: Request) -> Response:
        sess = session(request)
        if sess is None:
            return to_login(request)
        if sess.user.role != "admin":
            return page(request, "error.html", 403, sess=sess, error="The audit trail of all "
                        "cases is for admins; each case page shows its own.")  # fmt: skip
        return page(request, "audit.html", sess=sess, trail=desk.records.trail(limit=1000))

    @app.get("/api/queue")
    async def api_queue(request: Request, page_no: int = 1) -> Response:
        sess = session(request)
        if sess is None:
            return _unauthenticated()
        q = desk.records.queue(sess.user.name, page_no, PER_PAGE)
        return JSONResponse(
            {"total": q.total, "page": q.page, "cases": [asdict(i) for i in q.items]},
            headers=_HEADERS,
        )

    @app.get("/api/cases/{case_id}/audit")
    async def api_audit(request: Request, case_id: str) -> Response:
        if session(request) is None:
            return _unauthenticated()
        trail = [asdict(r) for r in desk.records.trail(case_id)]
        return JSONResponse({"case_id": case_id, "decisions": trail}, headers=_HEADERS)

    return app


def _unauthenticated() -> JSONResponse:
    return JSONResponse(
        {"error": "not logged in to the review desk; log in at /desk/login"},
        401,
        headers={"WWW-Authenticate": 'Cookie realm="edgeward review desk"'},
    )


def _image(case: ReviewCase) -> Response:
    kind = normalise_content_type(case.content_type)
    if kind in _BROWSER_IMAGES:
        return Response(case.image, media_type=kind, headers=_HEADERS)
    return Response(
        _browser_png(case.case_id, case.image, kind), media_type="image/png", headers=_HEADERS
    )


def _cookie(resp: Response, request: Request, name: str, value: str, max_age: int) -> None:
    resp.set_cookie(
        name,
        value,
        max_age=max_age,
        path=_base(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
