"""The review desk: reviewers log in and decide the review queue in a browser (cloud tier)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

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
