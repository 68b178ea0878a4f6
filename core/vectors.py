"""The vectors of an indexed chunk, and the LangChain vector store that writes them.

A book collection's points carry two named vectors: `dense`, the embedding of the whole chunk
(heading path + text), and `sparse`, its BM25 term weights (Qdrant adds the IDF at query time).

Next to it, a sentence collection (`<collection>-sentences`) holds one point per prose sentence of
every chunk, pointing back at its chunk. A question usually restates one sentence of a long section;
a whole-chunk vector dilutes that sentence with everything else the chunk says, a sentence vector
does not. They live in their own collection, as plain dense points, rather than as a multivector on
the chunk: Qdrant's embedded mode scores multivectors point by point in Python (hybrid queries took
twice as long), plain dense vectors as one matrix product.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_qdrant import QdrantVectorStore
from qdrant_client import QdrantClient, models

from core.sentences import split_sentences

DENSE, SPARSE = "dense", "sparse"  # named vectors of every book collection
CHUNK_KEY = "chunk"  # payload field of a sentence point: the id of its chunk's point
MIN_SENTENCE_WORDS = 3  # shorter fragments ("See below.") match anything a little
SENTENCE_IDS = uuid.UUID("6b1f3c2e-9d4a-5e8b-a7c1-2f0e4d6b8a93")  # fixed: ids must be reproducible


def sentence_collection(collection: str) -> str:
    """The name of the sibling collection holding `collection`'s sentence vectors."""
    return f"{collection}-sentences"


def chunk_sentences(text: str, metadata: dict[str, Any] | None = None) -> list[str]:
    """The sentences of an indexed chunk that get their own vector.

    Its prose, without the heading path it starts with (as a "sentence" it matched every question
    about the topic: -0.05 Recall@5 on the sample book), code and tables.
    """
    heading_path = (metadata or {}).get("heading_path")
    body = text.removeprefix(f"{heading_path}\n\n") if heading_path else text
    return split_sentences(body, min_words=MIN_SENTENCE_WORDS)


def sentence_point_id(chunk: str, ordinal: int) -> str:
    """The point id of the `ordinal`-th sentence (`chunk_sentences` order) of the chunk point `chunk`."""
    return str(uuid.uuid5(SENTENCE_IDS, f"{chunk}#{ordinal}"))


def create_sentence_collection(client: QdrantClient, collection: str, dimension: int) -> None:
    """Create the sentence collection of `collection` (plain dense vectors, cosine)."""
    name = sentence_collection(collection)
    client.create_collection(
        name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE)
    )
    # A server filters deletions and groups results by chunk; the index keeps both fast at scale.
    # (Embedded mode has no payload indexes and warns that this does nothing there.)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        client.create_payload_index(name, CHUNK_KEY, models.PayloadSchemaType.KEYWORD)


class SentenceVectorStore(QdrantVectorStore):
    """LangChain's Qdrant store that also writes (and deletes) the sentence points of each chunk.

    The indexing API (`aindex`) only adds new or changed chunks, so sentences are embedded exactly
    when their chunk is: an unchanged re-ingest still embeds nothing. Sentences are written after
    their chunk and deleted after it, so an interrupted run leaves at worst orphan sentences, which
    search ignores, never a chunk that lost its sentences while its record says it is done.
    """

    def __init__(self, *, with_sentences: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_sentences = with_sentences

    def add_texts(  # type: ignore[override]
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        ids: Sequence[str | int] | None = None,
        batch_size: int = 64,
        **kwargs: Any,
    ) -> list[str | int]:
        """Add the chunks, then (when the collection has them) their sentence vectors."""
        texts = list(texts)
        added = super().add_texts(texts, metadatas, ids, batch_size, **kwargs)
        if self.with_sentences:
            self._add_sentences(texts, metadatas or [{} for _ in texts], added)
        return added

    def delete(self, ids: list[str | int] | None = None, **kwargs: Any) -> bool | None:  # type: ignore[override]
        """Delete the chunks, then their sentence vectors."""
        done = super().delete(ids, **kwargs)
        if self.with_sentences and ids:
            self.client.delete(
                sentence_collection(self.collection_name),
                points_selector=models.Filter(
                    must=[
                        models.FieldCondition(key=CHUNK_KEY, match=models.MatchAny(any=[str(i) for i in ids]))
                    ]
                ),
            )
        return done

    def _add_sentences(
        self, texts: list[str], metadatas: list[dict[str, Any]], chunk_ids: Sequence[str | int]
    ) -> None:
        owners: list[tuple[str, int]] = []  # (chunk id, ordinal of the sentence in its chunk)
        sentences: list[str] = []
        for chunk, text, metadata in zip(chunk_ids, texts, metadatas, strict=True):
            for ordinal, sentence in enumerate(chunk_sentences(text, metadata)):
                owners.append((str(chunk), ordinal))
                sentences.append(sentence)
        if not sentences:
            return
        vectors = self._require_embeddings("sentence vectors").embed_documents(sentences)
        points = [
            models.PointStruct(
                id=sentence_point_id(chunk, ordinal),
                vector=vector,
                payload={CHUNK_KEY: chunk},
            )
            for (chunk, ordinal), vector in zip(owners, vectors, strict=True)
        ]
        self.client.upsert(sentence_collection(self.collection_name), points=points)
