"""Persistence: the one place that reads and writes the service's tables, one module per table group.

Who writes which table. Nothing outside this package writes to the database except the index's
bookkeeping (`index_records`, `index_collections`, `book_pages`: `ingest.record_manager`,
`ingest.pages`, `core.index`), `core.db`'s migrations (`schema_migrations`) and LangGraph's own
checkpointer (`checkpoints`, `checkpoint_blobs`, `checkpoint_writes`).

| table                          | module          |
|--------------------------------|-----------------|
| `threads` (rows, title, lease) | `threads`       |
| `thread_messages`              | `threads`       |
| `profiles`                     | `profiles`      |
| `usage_counters`               | `quotas`        |
| `rewrite_cache`                | `rewrite_cache` |
| `feedback`                     | `feedback`      |
| `turn_rate_windows`            | `turn_limits`   |
| `active_turns`                 | `turn_limits`   |

Stores hold SQL only: they return rows, values or None and raise no HTTP errors. What a missing
row or a used-up counter means (404, 409, 429) is decided by the caller (`api/`, `graphs/`).
"""
