"""One module per `edgeward bench` sub-command."""
