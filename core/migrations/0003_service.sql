-- The service: who is running a turn on a thread, learner profiles, daily quotas, cached rewrites,
-- and feedback on answers.

-- A turn leases its thread (across processes: a row, not a held connection, so a burst of streams
-- does not pin the pool). A crashed process's lease simply expires.
ALTER TABLE threads ADD COLUMN busy_until timestamptz;
ALTER TABLE threads ADD COLUMN busy_token text;

CREATE TABLE profiles (
    user_id    text PRIMARY KEY,
    profile    jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Calls counted per user, action and UTC day; a row is reserved before the model call and given
-- back when the call fails, so concurrent requests can never overshoot the limit.
CREATE TABLE usage_counters (
    user_id text NOT NULL,
    action  text NOT NULL,
    day     date NOT NULL,
    used    int  NOT NULL DEFAULT 0 CHECK (used >= 0),
    PRIMARY KEY (user_id, action, day)
);

-- Personalize/translate results, keyed by a hash of (action, content, profile or language, index version).
CREATE TABLE rewrite_cache (
    cache_key  text PRIMARY KEY,
    action     text        NOT NULL,
    result     jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE feedback (
    id         bigserial PRIMARY KEY,
    thread_id  text        NOT NULL REFERENCES threads ON DELETE CASCADE,
    seq        int         NOT NULL,  -- the assistant message (thread_messages.seq) rated
    user_id    text,
    rating     smallint    NOT NULL CHECK (rating IN (-1, 1)),
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (thread_id, seq)           -- a reader's latest opinion replaces the earlier one
);
