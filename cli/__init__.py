"""The `tutor` command: serve, ingest, search, eval, ask, token, doctor (entry point `cli.main:main`)."""
