-- Limits on reader turns (api/limits.py), shared by every replica.

-- Anonymous turns per client address in the current fixed window: one row per client, reset in
-- place when a new window starts (the window is a number: epoch seconds // window length).
CREATE TABLE turn_rate_windows (
    client       text   PRIMARY KEY,
    window_start bigint NOT NULL,
    used         int    NOT NULL CHECK (used >= 0)
);

-- Turns running now, per holder ('user:<sub>' or 'ip:<address>'). A row lives for one turn and is
-- deleted when it ends; a crashed process's rows expire.
CREATE TABLE active_turns (
    turn_id    uuid        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX active_turns_by_holder ON active_turns (holder, expires_at);
