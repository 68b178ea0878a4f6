"""Loading a Docusaurus book: metadata, MDX cleanup, and bad files that must not stop the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loader import BookError, LoadProblem, Page, clean_mdx, iter_book_files, load_book

BASE = "https://example.org/book/"


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load(root: Path) -> tuple[dict[str, Page], list[LoadProblem]]:
    pages, problems = load_book(root, BASE)
    return {page.source: page for page in pages}, problems


def test_page_metadata(tmp_path: Path) -> None:
    write(tmp_path, "01-module-1/_category_.json", '{"label": "Module 1: ROS 2", "position": 1}')
    write(
        tmp_path,
        "01-module-1/02-ros2-communication.md",
        "---\ntitle: ROS 2 Communication\ntags: [ros2, topics]\nsidebar_position: 3\n---\n\n"
        "# ROS 2 Communication\n\nNodes talk.\n\n## Topics\n\nPublish.\n",
    )
    pages, problems = load(tmp_path)
    page = pages["01-module-1/02-ros2-communication.md"]
    assert problems == []
    assert page.doc_path == "module-1/ros2-communication"
    assert page.url == "https://example.org/book/docs/module-1/ros2-communication"
    assert page.title == "ROS 2 Communication"
    assert page.category == "Module 1: ROS 2"
    assert page.tags == ("ros2", "topics")
    assert page.sidebar_position == 3.0
    assert page.body == "Nodes talk.\n\n## Topics\n\nPublish."  # duplicate h1 removed
    assert page.title_heading == "# ROS 2 Communication"


def test_title_fallbacks_and_position_from_prefix(tmp_path: Path) -> None:
    write(tmp_path, "02-basics/01-first-steps.md", "# From *Heading*\n\nText.\n")
    write(tmp_path, "02-basics/03-no_title-here.md", "Just text.\n")
    pages, _ = load(tmp_path)
    first = pages["02-basics/01-first-steps.md"]
    assert (first.title, first.body, first.sidebar_position) == ("From Heading", "Text.", 1.0)
    assert pages["02-basics/03-no_title-here.md"].title == "No Title Here"


def test_h1_differing_from_front_matter_title_is_kept(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "---\ntitle: Official\n---\n# Something else\n\nText.\n")
    page = load(tmp_path)[0]["a.md"]
    assert page.title == "Official"
    assert page.body.startswith("# Something else")
    assert page.title_heading is None


@pytest.mark.parametrize(
    ("name", "content", "label"),
    [
        ("_category_.json", '{"label": "From JSON"}', "From JSON"),
        ("_category_.yml", "label: From YML\nposition: 2\n", "From YML"),
        ("_category_.yaml", "label: From YAML\n", "From YAML"),
        ("_category_.json", '{"position": 2}', "getting-started"),
    ],
)
def test_category_labels(tmp_path: Path, name: str, content: str, label: str) -> None:
    write(tmp_path, f"03-getting-started/{name}", content)
    write(tmp_path, "03-getting-started/page.md", "Text.\n")
    write(tmp_path, "top.md", "Top level.\n")
    pages, problems = load(tmp_path)
    assert problems == []
    assert pages["03-getting-started/page.md"].category == label
    assert pages["top.md"].category is None


def test_broken_category_file_is_a_problem_and_falls_back(tmp_path: Path) -> None:
    write(tmp_path, "01-intro/_category_.json", "{not json")
    write(tmp_path, "01-intro/a.md", "Text.\n")
    write(tmp_path, "01-intro/b.md", "Text.\n")
    pages, problems = load(tmp_path)
    assert pages["01-intro/a.md"].category == "intro"
    assert [p.source for p in problems] == ["01-intro/_category_.json"]


def test_iter_book_files_skips_partials_hidden_and_node_modules(tmp_path: Path) -> None:
    for rel in [
        "b.md",
        "a/c.mdx",
        "_partial.md",
        ".hidden/x.md",
        "node_modules/p/readme.md",
        "_shared/y.md",
        "a/z.txt",
    ]:
        write(tmp_path, rel, "Text.\n")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_book_files(tmp_path)] == ["a/c.mdx", "b.md"]


def test_single_file_root(tmp_path: Path) -> None:
    path = write(tmp_path, "01-solo.md", "# Solo\n\nText.\n")
    pages, problems = load_book(path, BASE, docs_route="/learn/")
    assert problems == []
    assert [(p.source, p.doc_path, p.url, p.category) for p in pages] == [
        ("01-solo.md", "solo", "https://example.org/book/learn/solo", None)
    ]


def test_root_index_url(tmp_path: Path) -> None:
    write(tmp_path, "index.md", "Welcome.\n")
    assert load(tmp_path)[0]["index.md"].url == "https://example.org/book/docs"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text (byte 0x89 at offset 0)"),
        ("Caf\xe9 au lait\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
        (b"text\x00with nul", "binary file, not text (NUL byte at offset 4)"),
        ("---\ntitle: [unclosed\n---\nText.\n", "front matter is not valid YAML"),
        ("---\n- a\n- b\n---\nText.\n", "front matter is not a mapping of keys to values (found list)"),
        ("---\njust a string\n---\nText.\n", "front matter is not a mapping of keys to values (found str)"),
        ("", "empty page"),
        ("---\ntitle: Only front matter\n---\n\n", "empty page"),
        ("import X from 'x';\n\n<X />\n", "empty page"),
    ],
)
def test_bad_file_is_a_problem_and_the_rest_loads(tmp_path: Path, content: str | bytes, message: str) -> None:
    write(tmp_path, "01-good.md", "Good page.\n")
    write(tmp_path, "02-bad.md", content)
    write(tmp_path, "03-also-good.md", "Also good.\n")
    pages, problems = load(tmp_path)
    assert sorted(pages) == ["01-good.md", "03-also-good.md"]
    assert len(problems) == 1
    assert problems[0].source == "02-bad.md"
    assert problems[0].message.startswith(message)


def test_yaml_problem_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "a.md", "---\ntitle: ok\ntags: [a, b\n---\nText.\n")
    (problem,) = load(tmp_path)[1]
    assert "line" in problem.message


def test_duplicate_doc_path_is_a_problem_for_the_second(tmp_path: Path) -> None:
    write(tmp_path, "01-intro.md", "First.\n")
    write(tmp_path, "intro.md", "Second.\n")
    pages, problems = load(tmp_path)
    assert list(pages) == ["01-intro.md"]
    assert [(p.source, "01-intro.md" in p.message) for p in problems] == [("intro.md", True)]


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(BookError, match="does not exist"):
        load_book(tmp_path / "nope", BASE)


def test_empty_folder_raises(tmp_path: Path) -> None:
    write(tmp_path, "notes.txt", "not markdown")
    with pytest.raises(BookError, match=r"no \.md or \.mdx files"):
        load_book(tmp_path, BASE)


def test_non_markdown_file_raises(tmp_path: Path) -> None:
    with pytest.raises(BookError, match="not a Markdown file"):
        load_book(write(tmp_path, "x.txt", "x"), BASE)


# --- MDX cleanup ----------------------------------------------------------------------------------


def test_imports_and_exports_are_dropped() -> None:
    mdx = (
        "import Tabs from '@theme/Tabs';\n"
        "import {\n  A,\n  B,\n} from './parts';\n"
        "export const meta = {\n  a: {b: 1},\n  c: '}',\n};\n"
        "export const Hi = ({children}) => (\n  <span style={{color: 'red'}}>{children}</span>\n);\n"
        "\nText stays.\n"
    )
    assert clean_mdx(mdx) == "Text stays."


def test_jsx_tags_go_and_their_text_stays() -> None:
    mdx = (
        '<Tabs groupId="lang">\n<TabItem value="py" label="Python" default>\n\nPython text with '
        '<Highlight color={"#fff"}>emphasis</Highlight> and <br/> a break.\n\n</TabItem>\n</Tabs>\n'
        "<Foo bar={{a: 1}} />\n<>fragment</>\n"
    )
    assert clean_mdx(mdx) == "Python text with emphasis and  a break.\n\nfragment"


def test_inline_code_and_autolinks_keep_angle_brackets() -> None:
    assert (
        clean_mdx("Use `<Tabs>` here, see <https://ros.org>.") == "Use `<Tabs>` here, see <https://ros.org>."
    )


def test_stray_angle_bracket_does_not_swallow_paragraphs() -> None:
    text = "A <b and don't stop.\n\nNext paragraph > here."
    assert clean_mdx(text) == text


def test_comments_are_removed() -> None:
    assert clean_mdx("Before {/* one */} after.\n\n{/*\nmulti\nline\n*/}\n<!-- html -->\nEnd.") == (
        "Before  after.\n\nEnd."
    )


def test_admonitions_become_plain_text() -> None:
    mdx = (
        ":::tip Title here\n\nUseful.\n\n:::\n\n"
        ":::note\nPlain.\n:::\n\n"
        ":::warning[Bracket title]\nCareful.\n:::"
    )
    assert clean_mdx(mdx) == "Tip: Title here\n\nUseful.\n\nNote:\nPlain.\n\nWarning: Bracket title\nCareful."


def test_code_fences_are_never_altered() -> None:
    fence_py = "```python title=\"x.py\"\n# comment\nimport x from 'y'\n<Tabs>\n{/* kept */}\n:::tip\n```"
    fence_js = "~~~~js\nexport const a = 1;\n```\nstill inside\n~~~~"
    fence_list = "  ```\n  <Indented />\n  ```"  # fence nested in a list item
    mdx = f"import X from 'x';\n\nIntro <b>bold</b>.\n\n{fence_py}\n\n{fence_js}\n\n{fence_list}"
    assert clean_mdx(mdx) == f"Intro bold.\n\n{fence_py}\n\n{fence_js}\n\n{fence_list}"


def test_hash_comment_in_fence_is_not_taken_as_title(tmp_path: Path) -> None:
    write(tmp_path, "guide.md", "```python\n# not a title\nprint()\n```\n\n# Real Title\n\nText.\n")
    page = load(tmp_path)[0]["guide.md"]
    assert page.title == "Real Title"
    assert "# not a title" in page.body


def test_unbalanced_export_only_drops_up_to_the_next_blank_line() -> None:
    assert clean_mdx("export const broken = {\nstill js\n\nProse after.\n\nMore.") == "Prose after.\n\nMore."


def test_export_default_with_blank_lines_inside_its_body() -> None:
    mdx = (
        "export default function Layout({children}) {\n  const a = 1;\n\n  return <div>{children}</div>;\n}\n"
    )
    mdx += "\nText."
    assert clean_mdx(mdx) == "Text."
