-- Book index bookkeeping: which chunks are in which vector collection (LangChain record manager),
-- and what each collection was built with.

CREATE TABLE index_records (
    namespace  text             NOT NULL,  -- vector store location + collection
    key        text             NOT NULL,  -- document hash, also the point id in Qdrant
    group_id   text,                       -- the source file the chunk came from
    updated_at double precision NOT NULL,  -- epoch seconds, Postgres clock
    PRIMARY KEY (namespace, key)
);
CREATE INDEX index_records_group ON index_records (namespace, group_id);
CREATE INDEX index_records_updated ON index_records (namespace, updated_at);

CREATE TABLE index_collections (
    namespace       text PRIMARY KEY,
    collection      text             NOT NULL,
    embedding_model text             NOT NULL,
    dimension       int              NOT NULL,
    sparse_avgdl    double precision NOT NULL,  -- BM25 average document length, fixed at creation
    version         bigint           NOT NULL DEFAULT 1,  -- bumped whenever an ingest changes the index
    chunks          int              NOT NULL DEFAULT 0,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    updated_at      timestamptz      NOT NULL DEFAULT now()
);
