"""Isolation: backends behind one interface, and the agent that runs inside."""
