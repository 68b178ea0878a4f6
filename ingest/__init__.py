"""Book → chunks → vectors: load a Docusaurus docs folder, split by heading, index incrementally.

Offers the loader (slugs, anchors, MDX), the heading-aware splitter, the incremental indexer (LangChain
indexing API with a Postgres record manager), the book-pages table, and the retrieval and selection
evaluations behind `tutor eval`. Imports only `core`.
"""
