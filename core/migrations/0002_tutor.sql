-- The tutor: conversation threads with their full transcripts, and the book's text for checking
-- whether a reader's selection comes from the book.

CREATE TABLE threads (
    thread_id  text PRIMARY KEY,
    user_id    text,                -- NULL: anonymous (whoever holds the unguessable id)
    title      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_by_user ON threads (user_id, updated_at DESC);

-- Every message ever exchanged, with the sources exactly as they were shown (the checkpoint only
-- keeps a bounded window).
CREATE TABLE thread_messages (
    thread_id  text        NOT NULL REFERENCES threads ON DELETE CASCADE,
    seq        int         NOT NULL,
    role       text        NOT NULL CHECK (role IN ('user', 'assistant')),
    content    text        NOT NULL,
    route      text,
    sources    jsonb       NOT NULL DEFAULT '[]',
    grounded   boolean,
    language   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (thread_id, seq)
);

-- One row per page: its text normalised for matching, and where each section starts in it.
CREATE TABLE book_pages (
    namespace  text  NOT NULL,
    source     text  NOT NULL,
    doc_path   text  NOT NULL,
    title      text  NOT NULL,
    url        text  NOT NULL,
    page_hash  text  NOT NULL,
    normalized text  NOT NULL,
    sections   jsonb NOT NULL,  -- [[offset, anchor, heading], ...] in page order
    PRIMARY KEY (namespace, source)
);
