"""The review desk: reviewers log in and decide the review queue in a browser (cloud tier)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Receive, Scope, Send

    from cloud.review_desk.desk import LabelSink, ReviewDesk
    from cloud.store import CloudStore

MOUNT_PATH = "/desk"


def mount_desk(app: FastAPI, store: CloudStore, on_label: LabelSink | None = None) -> ReviewDesk:
    """Serve the desk under /desk of `app`, over `store` (once: a second call replaces it)."""
    from starlette.routing import Mount

    from cloud.review_desk.desk import ReviewDesk
    from cloud.review_desk.routes import create_desk_app

    app.router.routes[:] = [
        r for r in app.router.routes if not (isinstance(r, Mount) and r.path == MOUNT_PATH)
    ]
    desk = ReviewDesk(store, on_label)
    app.mount(MOUNT_PATH, create_desk_app(desk))
    return desk


# The desk this process serves through `desk_asgi`. Ray Serve freezes (pickles) the ingress's
# FastAPI app when the class is decorated, so a mount added in the replica's constructor would
# never be served; `desk_asgi` is mounted at import time instead, and the constructor binds it.
_bound: dict[str, Any] = {}


def bind_desk(store: CloudStore, on_label: LabelSink | None = None) -> ReviewDesk:
    """Serve a desk over `store` through `desk_asgi` in this process."""
    from cloud.review_desk.desk import ReviewDesk
    from cloud.review_desk.routes import create_desk_app

    desk = ReviewDesk(store, on_label)
    _bound["app"] = create_desk_app(desk)
    return desk


async def desk_asgi(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI entry of the desk bound by `bind_desk`; 503 until one is."""
    app: ASGIApp | None = _bound.get("app")
    if app is None:
        from starlette.responses import PlainTextResponse

        await PlainTextResponse("review desk: not bound to a store yet; retry shortly", 503)(
            scope, receive, send
        )
        return
    await app(scope, receive, send)
