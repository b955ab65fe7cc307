"""Inference backends behind one interface, chosen by a type string (`auto` picks the best).

backend = create_backend("auto", Registry(root).load_serving("fundus-triage"))
outputs = backend.run(batch)   # {"logits": (N, C), "features": (N, D)}
"""

from edge.backends.api import Backend, BackendUnavailableError
from edge.backends.registry import (
    AUTO_ORDER,
    BACKEND_TYPES,
    available_backends,
    backend_class,
    create_backend,
    unavailable_reason,
)
from edge.backends.served import Prediction, ServedModel

__all__ = [
    "AUTO_ORDER",
    "BACKEND_TYPES",
    "Backend",
    "BackendUnavailableError",
    "Prediction",
    "ServedModel",
    "available_backends",
    "backend_class",
    "create_backend",
    "unavailable_reason",
]
