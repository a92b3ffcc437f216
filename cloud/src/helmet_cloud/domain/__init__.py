"""Rules with no I/O: no database session, no web framework, no broker client."""
