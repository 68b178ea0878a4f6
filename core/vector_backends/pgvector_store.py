"""The LangChain vector store the indexing API writes a pgvector collection through.

Chunks go into langchain-postgres' `PGVectorStore` table; their BM25 postings and sentence vectors
into the two tables beside it (`core.vector_backends.pgvector`).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_postgres import PGEngine, PGVectorStore

from core.db import Database
from core.sparse import BM25SparseEmbeddings
from core.vectors import chunk_sentences


def collection_tables(collection: str) -> tuple[str, str, str]:
    """The quoted names of a collection's chunk, postings and sentence tables.

    `vec_` + the name in lower-case letters, digits and `_`; a name that had to be changed or cut
    (Postgres names stop at 63 bytes) gets a hash of the original, so two collections never share.
    """
    safe = re.sub(r"[^a-z0-9_]", "_", collection.lower())
    if safe != collection or len(safe) > 40:
        safe = f"{safe[:31]}_{zlib.crc32(collection.encode()):08x}"
    name = f"vec_{safe}"
    return f'"{name}"', f'"{name}_postings"', f'"{name}_sentences"'


class ChunkVectorStore(VectorStore):
    """The LangChain store `aindex` writes through: chunks into PGVectorStore, then their extras.

    After a batch of chunks is stored, their BM25 postings and (when the collection has them) their
    sentence vectors are written, so sentences are embedded exactly when their chunk is and an
    unchanged re-ingest embeds nothing. Deleting chunks cascades to both.
    """

    def __init__(
        self,
        db: Database,
        engine: PGEngine,
        schema: str,
        collection: str,
        embeddings: Embeddings,
        sparse: BM25SparseEmbeddings,
        sentences: bool,
    ) -> None:
        self.db, self.engine, self.schema = db, engine, schema
        self.collection, self.sparse, self.sentences = collection, sparse, sentences
        self._embeddings = embeddings
        self._chunks: PGVectorStore | None = None

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model chunks and sentences are embedded with."""
        return self._embeddings

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Store the chunks (embedded by PGVectorStore), then their postings and sentence vectors."""
        ids = await (await self._store()).aadd_documents(documents, ids=kwargs.get("ids"))
        postings = [
            (chunk, term, weight)
            for chunk, vector in zip(
                ids, self.sparse.embed_documents([d.page_content for d in documents]), strict=True
            )
            for term, weight in zip(vector.indices, vector.values, strict=True)
        ]
        owners = [
            (chunk, ordinal, sentence)
            for chunk, doc in zip(ids, documents, strict=True)
            for ordinal, sentence in enumerate(chunk_sentences(doc.page_content, doc.metadata))
        ]
        vectors = (
            await self._embeddings.aembed_documents([s for *_, s in owners])
            if self.sentences and owners
            else []
        )
        _, posting_table, sentence_table = collection_tables(self.collection)
        async with self.db.pool.connection() as conn, conn.transaction():
            # A chunk stored again (same id) replaces its extras rather than doubling them.
            await conn.execute(f"DELETE FROM {posting_table} WHERE chunk = ANY(%s::uuid[])", (ids,))
            async with conn.cursor().copy(f"COPY {posting_table} (chunk, term, weight) FROM STDIN") as copy:
                for row in postings:
                    await copy.write_row(row)
            if vectors:
                await conn.execute(f"DELETE FROM {sentence_table} WHERE chunk = ANY(%s::uuid[])", (ids,))
                async with conn.cursor().copy(
                    f"COPY {sentence_table} (chunk, ordinal, embedding) FROM STDIN"
                ) as copy:
                    for (chunk, ordinal, _), vector in zip(owners, vectors, strict=True):
                        await copy.write_row((chunk, ordinal, _vector_text(vector)))
        return ids

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete chunks; their postings and sentences go with them (ON DELETE CASCADE)."""
        return await (await self._store()).adelete(ids)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Blocking deletes are not used: the indexer runs async (`adelete`)."""
        raise NotImplementedError("use adelete")

    def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
        """Blocking writes are not used: the indexer runs async (`aadd_documents`)."""
        raise NotImplementedError("use aadd_documents")

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Not used: search reads the tables directly (`core.retrieval`)."""
        raise NotImplementedError("search with core.retrieval.search")

    @classmethod
    def from_texts(cls, *args: Any, **kwargs: Any) -> ChunkVectorStore:
        """Not supported: open the collection through `BookIndex`."""
        raise NotImplementedError("open the collection through BookIndex")

    async def _store(self) -> PGVectorStore:
        if self._chunks is None:
            table = collection_tables(self.collection)[0].strip('"')
            self._chunks = await PGVectorStore.create(
                self.engine, self._embeddings, table, schema_name=self.schema
            )
        return self._chunks


def _vector_text(vector: list[float]) -> str:
    return "[" + ",".join(map(repr, map(float, vector))) + "]"
