"""Chunk boundaries, section metadata and id stability."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from itertools import pairwise

import pytest

from ingest.loader import Page
from ingest.splitter import Chunk, split_page

PAGE_URL = "https://example.org/docs/module-1/ros2-communication"


def make_page(
    body: str, *, title_heading: str | None = None, category: str | None = "Module 1: ROS 2"
) -> Page:
    return Page(
        source="01-module-1/02-ros2-communication.md",
        doc_path="module-1/ros2-communication",
        url=PAGE_URL,
        title="ROS 2 Communication",
        category=category,
        tags=("ros2",),
        sidebar_position=2.0,
        body=body,
        title_heading=title_heading,
    )


def paragraph(word: str, length: int) -> str:
    text = " ".join([word] * (length // (len(word) + 1) + 1))
    return text[:length].rstrip() + "."


BODY = """Intro before any heading.

## Topics: Publish & Subscribe

Topics carry messages.

### QoS {#qos-profiles}

Reliability settings.

## Empty section

## Services

Request and reply.

```python
# a comment, not a heading
print("hi")
```

## Services

Second section with the same title.
"""


def test_sections_heading_path_anchor_url_order() -> None:
    chunks = split_page(make_page(BODY))
    summary = [(c.heading, c.heading_path, c.anchor, c.url, c.order) for c in chunks]
    root = "Module 1: ROS 2 › ROS 2 Communication"
    assert summary == [
        ("ROS 2 Communication", root, "", PAGE_URL, 0),
        (
            "Topics: Publish & Subscribe",
            f"{root} › Topics: Publish & Subscribe",
            "topics-publish--subscribe",
            f"{PAGE_URL}#topics-publish--subscribe",
            1,
        ),
        ("QoS", f"{root} › Topics: Publish & Subscribe › QoS", "qos-profiles", f"{PAGE_URL}#qos-profiles", 2),
        ("Services", f"{root} › Services", "services", f"{PAGE_URL}#services", 3),
        ("Services", f"{root} › Services", "services-1", f"{PAGE_URL}#services-1", 4),
    ]
    assert chunks[3].text == 'Request and reply.\n\n```python\n# a comment, not a heading\nprint("hi")\n```'
    assert all(not c.text.startswith("#") for c in chunks)


def test_heading_path_without_category() -> None:
    chunks = split_page(make_page("## Only\n\nText.", category=None))
    assert chunks[0].heading_path == "ROS 2 Communication › Only"


def test_body_h1_starts_a_section_and_resets_the_path() -> None:
    chunks = split_page(make_page("## A\n\nText a.\n\n# Part Two\n\nText b.\n\n### Deep\n\nText c."))
    assert [c.heading_path.split(" › ")[2:] for c in chunks] == [["A"], ["Part Two"], ["Part Two", "Deep"]]


def test_removed_title_h1_still_counts_for_anchor_numbering() -> None:
    chunks = split_page(make_page("## ROS 2 Communication\n\nText.", title_heading="# ROS 2 Communication"))
    assert chunks[0].anchor == "ros-2-communication-1"
    # An h1 with an explicit id is not registered with Docusaurus' slugger.
    chunks = split_page(
        make_page("## ROS 2 Communication\n\nText.", title_heading="# ROS 2 Communication {#t}")
    )
    assert chunks[0].anchor == "ros-2-communication"


def test_code_fence_is_never_split_even_when_longer_than_chunk_size() -> None:
    code = "```python\n" + "\n".join(f"x_{i} = {i}  # {'y' * 40}" for i in range(60)) + "\n\n# inner\n```"
    body = f"## Code\n\n{paragraph('before', 300)}\n\n{code}\n\n{paragraph('after', 300)}"
    chunks = split_page(make_page(body), chunk_size=500, chunk_overlap=100)
    holding = [c for c in chunks if "x_0 = 0" in c.text]
    assert len(holding) == 1
    assert code in holding[0].text
    assert len(holding[0].text) > 500
    assert sum(c.text.count("```python") for c in chunks) == 1  # never repeated as overlap


def test_prose_respects_size_and_overlaps() -> None:
    paragraphs = [paragraph(f"p{i}", 120) for i in range(12)]
    chunks = split_page(
        make_page("## Prose\n\n" + "\n\n".join(paragraphs)), chunk_size=400, chunk_overlap=150
    )
    assert len(chunks) > 3
    assert all(len(c.text) <= 400 for c in chunks)
    for previous, current in pairwise(chunks):
        last_paragraph = previous.text.split("\n\n")[-1]
        assert current.text.startswith(last_paragraph)  # trailing block repeated as overlap
    assert "\n\n".join(dict.fromkeys(p for c in chunks for p in c.text.split("\n\n"))) == "\n\n".join(
        paragraphs
    )


def test_long_single_paragraph_uses_recursive_splitter() -> None:
    long = paragraph("word", 2500)
    chunks = split_page(make_page(f"## Long\n\n{long}"), chunk_size=500, chunk_overlap=50)
    assert len(chunks) >= 5
    assert all(len(c.text) <= 500 for c in chunks)
    assert all(c.anchor == "long" for c in chunks)


def test_no_overlap_when_zero() -> None:
    paragraphs = [paragraph(f"p{i}", 150) for i in range(6)]
    chunks = split_page(make_page("\n\n".join(paragraphs)), chunk_size=320, chunk_overlap=0)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i : i + 2]) for i in range(0, 6, 2)]


def test_table_stays_whole_and_long_tables_repeat_the_header() -> None:
    header = "| Name | Meaning |\n|------|---------|"
    rows = [f"| row{i} | {'m' * 40} |" for i in range(30)]
    small = f"{header}\n" + "\n".join(rows[:3])
    chunks = split_page(
        make_page(f"## T\n\n{paragraph('a', 200)}\n\n{small}"), chunk_size=250, chunk_overlap=50
    )
    assert sum(small in c.text for c in chunks) == 1
    big = f"{header}\n" + "\n".join(rows)
    chunks = split_page(make_page(f"## T\n\n{big}"), chunk_size=400, chunk_overlap=50)
    assert len(chunks) > 1
    assert all(c.text.startswith(header) and len(c.text) <= 400 for c in chunks)
    assert [r for c in chunks for r in c.text.split("\n")[2:]] == rows


def test_ids_are_stable_across_text_edits_and_hash_changes() -> None:
    before = split_page(make_page(BODY))
    after = split_page(make_page(BODY.replace("Topics carry messages.", "Topics carry typed messages.")))
    assert [c.id for c in before] == [c.id for c in after]
    changed = [(b.content_hash != a.content_hash) for b, a in zip(before, after, strict=True)]
    assert changed == [False, True, False, False, False]
    assert before[1].content_hash == hashlib.sha256(before[1].text.encode()).hexdigest()


def test_ids_unique_within_page_and_depend_on_source() -> None:
    body = "## Same {#x}\n\nOne.\n\n## Other {#x}\n\nTwo."
    chunks = split_page(make_page(body))
    assert len({c.id for c in chunks}) == len(chunks) == 2
    moved = split_page(replace(make_page(body), source="other.md"))
    assert {c.id for c in chunks}.isdisjoint(c.id for c in moved)


def test_metadata_is_json_and_excludes_text() -> None:
    chunk = split_page(make_page(BODY))[1]
    metadata = chunk.metadata()
    assert "text" not in metadata
    assert set(metadata) == set(Chunk.__dataclass_fields__) - {"text"}
    assert json.loads(json.dumps(metadata)) == metadata


def test_empty_sections_and_blank_intro_give_no_chunks() -> None:
    assert split_page(make_page("\n\n## A\n\n## B\n\n### C\n")) == []


def test_invalid_sizes_rejected() -> None:
    with pytest.raises(ValueError):
        split_page(make_page("Text."), chunk_size=100, chunk_overlap=100)
