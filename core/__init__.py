"""Foundations every layer uses: settings, the Postgres pool and migrations, the Qdrant index.

Offers `core.settings.Settings` (one class, every setting), `core.db.Database`, the book index and
hybrid search (dense + BM25 sparse + sentence vectors), chat/embedding model providers, the learner
profile, language detection and metrics. Imports nothing from the other packages.
"""
