"""The main job: the whole system end to end, with a failure thrown in, and a report."""
