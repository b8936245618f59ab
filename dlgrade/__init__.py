"""dlgrade: the command line and the top of the dependency graph."""
