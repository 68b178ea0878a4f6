"""The SQL migrations (`NNNN_name.sql`), applied in order on start under an advisory lock by `core.db`."""
