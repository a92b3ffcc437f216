"""Use cases: what the API, the pages, ingest and the command line do, each in one place."""
