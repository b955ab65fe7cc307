"""edge traffic."""
