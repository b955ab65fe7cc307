"""The quality net's doubt level, shared by the verdict (edge) and the threshold choice (models).

A scan whose quality-net p_reject is at or above this fraction of the manifest's `reject`
threshold is "in doubt": it never gets an all-clear (edge/clinic/verdict.py). The build chooses
that threshold so that the doubt level, together with the classical checks, protects the twin's
rejects (models/operating_point.py `gate_reject_threshold`), so both must read the same number.
"""

QUALITY_DOUBT_FRACTION = 0.5
