"""Slugs, heading parsing and doc paths must match what Docusaurus generates, or cited links 404."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from ingest.anchors import (
    Heading,
    HeadingSlugger,
    code_fence_spans,
    doc_path,
    heading_plain_text,
    heading_slug,
    iter_headings,
    parse_heading,
    split_number_prefix,
)


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Topics: Publish & Subscribe", "topics-publish--subscribe"),
        ("What's a Node?", "whats-a-node"),
        ("ROS 2 vs. ROS 1", "ros-2-vs-ros-1"),
        ("Hello, World!", "hello-world"),
        ("Using `rclpy.spin()`", "using-rclpyspin"),
        ("The `snake_case` name", "the-snake_case-name"),
        ("See [the docs](https://docs.ros.org) now", "see-the-docs-now"),
        ("**Bold** and _italic_ text", "bold-and-italic-text"),
        ("my_var and __init__", "my_var-and-init"),
        ("Tags <span class='x'>inside</span> heading", "tags-inside-heading"),
        ("اردو میں خلاصہ", "اردو-میں-خلاصہ"),
        ("Привет non-latin 你好", "привет-non-latin-你好"),
        ("😄 emoji", "-emoji"),
        ("Foo  Bar", "foo--bar"),
        ("x² and ½", "x-and-"),
        ("Café Ünïcode", "café-ünïcode"),
        ("A &amp; B", "a--b"),
    ],
)
def test_heading_slug_matches_github_slugger(text: str, slug: str) -> None:
    assert heading_slug(text) == slug


def test_plain_text_keeps_code_link_text_and_image_alt() -> None:
    assert (
        heading_plain_text("Run `ros2 *topic*` via [CLI](x) ![icon](i.png)")
        == "Run ros2 *topic* via CLI icon"
    )


def test_slugger_numbers_repeats_like_github_slugger() -> None:
    slugger = HeadingSlugger()
    assert [slugger.slug(t) for t in ["Setup", "Setup", "Setup", "Other"]] == [
        "setup",
        "setup-1",
        "setup-2",
        "other",
    ]


def test_slugger_skips_numbers_taken_by_real_headings() -> None:
    slugger = HeadingSlugger()
    assert [slugger.slug(t) for t in ["foo-1", "foo", "foo"]] == ["foo-1", "foo", "foo-2"]
    slugger = HeadingSlugger()
    assert [slugger.slug(t) for t in ["foo", "foo", "foo-1", "foo"]] == ["foo", "foo-1", "foo-1-1", "foo-2"]


def test_explicit_ids_bypass_the_slugger() -> None:
    slugger = HeadingSlugger()
    custom = parse_heading("## Setup {#custom}")
    plain = parse_heading("## Setup")
    assert custom is not None and plain is not None
    assert slugger.anchor(custom) == "custom"
    assert slugger.anchor(plain) == "setup"  # the explicit id did not consume "setup"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("# Title", Heading(1, "Title")),
        ("###### Six", Heading(6, "Six")),
        ("## Closing hashes ##", Heading(2, "Closing hashes")),
        ("## Keep#this", Heading(2, "Keep#this")),
        ("   ### Three spaces", Heading(3, "Three spaces")),
        ("## Custom {#my-id}", Heading(2, "Custom", "my-id")),
        ("## *Styled* part {#styled-id} ##", Heading(2, "*Styled* part", "styled-id")),
        ("#", Heading(1, "")),
    ],
)
def test_parse_heading(line: str, expected: Heading) -> None:
    assert parse_heading(line) == expected


@pytest.mark.parametrize("line", ["#NoSpace", "    # indented code", "####### seven", "plain text", ""])
def test_not_a_heading(line: str) -> None:
    assert parse_heading(line) is None


def test_hash_lines_inside_fences_are_not_headings() -> None:
    lines = ["# Real", "```python", "# comment", "```", "~~~~", "## not", "~~~", "~~~~", "## Real two"]
    assert [(i, h.text) for i, h in iter_headings(lines)] == [(0, "Real"), (8, "Real two")]


def test_fence_spans_need_a_closing_fence_at_least_as_long() -> None:
    lines = ["````md", "```", "inner", "```", "````", "after", "```", "unclosed"]
    assert code_fence_spans(lines) == [(0, 5), (6, 8)]


def test_inline_triple_backticks_are_not_a_fence() -> None:
    assert code_fence_spans(["```inline``` text", "# Heading"]) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-intro", (1, "intro")),
        ("003 - My Doc", (3, "My Doc")),
        ("2_setup", (2, "setup")),
        ("10.config", (10, "config")),
        ("2021-05-20-release", (None, "2021-05-20-release")),
        ("1.2-notes", (None, "1.2-notes")),
        ("intro", (None, "intro")),
        ("42", (None, "42")),
    ],
)
def test_number_prefix(name: str, expected: tuple[int | None, str]) -> None:
    assert split_number_prefix(name) == expected


@pytest.mark.parametrize(
    ("path", "front_matter", "expected"),
    [
        ("01-module-1/02-ros2-communication.md", {}, "module-1/ros2-communication"),
        ("01-module-1/02-ros2-communication.mdx", {}, "module-1/ros2-communication"),
        ("intro.md", {}, "intro"),
        ("index.md", {}, ""),
        ("01-module-1/index.md", {}, "module-1"),
        ("01-module-1/README.md", {}, "module-1"),
        ("01-module-1/Index.mdx", {}, "module-1"),
        ("02-basics/02-basics.md", {}, "basics"),
        ("a/01-b/c.md", {}, "a/b/c"),
        ("01-module-1/x.md", {"slug": "/custom/path/"}, "custom/path"),
        ("01-module-1/x.md", {"slug": "/"}, ""),
        ("01-module-1/x.md", {"slug": "renamed"}, "module-1/renamed"),
        ("01-module-1/x.md", {"id": "the-id"}, "module-1/the-id"),
        ("01-module-1/x.md", {"id": "the-id", "slug": "wins"}, "module-1/wins"),
        ("01-module-1/index.md", {"slug": "welcome"}, "module-1/welcome"),
        ("01-module-1/index.md", {"id": "ignored"}, "module-1"),
    ],
)
def test_doc_path(path: str, front_matter: dict[str, str], expected: str) -> None:
    assert doc_path(PurePosixPath(path), front_matter) == expected
