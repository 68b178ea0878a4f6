"""One FastAPI router per resource: chat, threads, profile, rewrite (personalize/translate), health."""
