"""Traffic signal knowledge every tier shares: phases, timing limits, conflicts, demand, safety."""
