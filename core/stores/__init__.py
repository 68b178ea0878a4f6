"""Persistence: the one place that reads and writes the service's tables, one module per table group.

Who writes which table (nothing outside this package does, except ingest's index bookkeeping,
`core.db`'s migrations and LangGraph's own checkpointer):

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
