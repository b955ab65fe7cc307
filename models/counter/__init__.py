"""The traffic counter: queued and approaching vehicles per approach from one camera frame."""
