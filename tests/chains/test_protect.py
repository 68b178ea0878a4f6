"""Masking must be lossless, opaque where it should be, and forgiving of what models do to placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest

from chains.glossary import load_glossary
from chains.protect import Masked, mask, restore, split_masked, unmask

GLOSSARY = ("ROS 2", "ROS", "Isaac Sim", "Isaac ROS", "URDF", "Nav2", "C++")
BOOK = Path(__file__).resolve().parents[2] / "book" / "docs"

SAMPLES = {
    "plain": "Just prose, nothing to protect.\n",
    "empty": "",
    "fence": "Intro.\n\n```python\nimport rclpy\nprint('x')\n```\n\nAfter.\n",
    "tilde fence": "~~~bash\nros2 run demo talker\n~~~\n",
    "fence without newline at end": "Text\n\n```\ncode\n```",
    "unclosed fence": "Text\n\n```python\nx = 1\n# never closed\n",
    "longer closer": "````md\n```python\ninner\n```\n````\n",
    "placeholder-like text in code": "```\nx = '⟦C1⟧' + '[[C2]]' + '[U1]'\n```\nThen `⟦I1⟧` here.\n",
    "placeholder-like text in prose": "Prose mentions ⟦C1⟧, [[T2]] and [U3] literally.\n",
    "placeholder-like text next to real code": "About ⟦C1⟧ and [C2]:\n\n```\nreal()\n```\n",
    "inline code": "Call `rclpy.init()` then `node.get_logger()`.\n",
    "nested backticks": "Use ``a `tick` inside`` or ```b `` c``` here; a lone ` stays.\n",
    "crlf": "Line one\r\n\r\n```\r\ncode\r\n```\r\nend\r\n",
    "indented fence in list": "1. Step:\n\n   ```bash\n   colcon build\n   ```\n\n2. Next\n",
    "markdown link": "See [ROS docs](https://docs.ros.org/en/humble/Tutorials.html) now.\n",
    "link with title": 'A [link](https://x.org/a "Title here") end.\n',
    "url with parens": "Wiki: https://en.wikipedia.org/wiki/Kalman_filter_(disambiguation) (see it).\n",
    "link target with parens": "[Kalman](https://en.wikipedia.org/wiki/Filter_(signal_processing)) ok\n",
    "url at sentence end": "Read https://nav2.org/docs. Also (https://x.org/a).\n",
    "autolink": "Mail <mailto:team@example.org> or <https://example.org>.\n",
    "reference link": "Text [ref][1].\n\n[1]: https://example.org/ref\n",
    "image": "![A humanoid robot](/img/robot.png)\n",
    "relative link": "[next chapter](./02-ros2-communication.md#topics)\n",
    "math": "Energy $E = mc^2$ and\n\n$$\n\\tau = J^T F\n$$\n\ncosts $5 and $10.\n",
    "html": 'Line<br/>break and <span style="color:red">red</span> <!-- note -->\n',
    "jsx": '<Tabs groupId="x">\n<TabItem value="a" label="A" default>\n\nText.\n\n</TabItem>\n</Tabs>\n',
    "jsx braces": "<Highlight color={{a: '>'}}>hi</Highlight>\n",
    "mdx esm": "import Tabs from '@theme/Tabs';\n\nexport const X = () => (\n  <b>x</b>\n);\n\nBody.\n",
    "front matter": "---\nid: x\ntitle: Nodes\n---\n\n# Nodes\n",
    "glossary": "ROS 2 and ROS differ; Isaac ROS runs on Isaac Sim. URDF-based C++ nodes. PROS stays.\n",
    "urdu around code": "یہ کوڈ دیکھیں:\n\n```python\nrclpy.init()\n```\n\nپھر `ros2 run` چلائیں۔ https://docs.ros.org۔\n",
    "chinese": "使用 `rclpy` 创建节点，参见 [文档](https://docs.ros.org)。\n",
    "admonition": ":::note About use_sim_time\nSet `use_sim_time`.\n:::\n",
    "table": "| Sensor | Topic |\n|---|---|\n| IMU | `/imu` |\n| LiDAR | `/scan` |\n",
    "less than in prose": "If a < b and c > d then 3<4.\n",
}


@pytest.mark.parametrize("text", SAMPLES.values(), ids=SAMPLES.keys())
def test_round_trip(text: str) -> None:
    masked = mask(text, GLOSSARY)
    restored = restore(masked.text, masked)
    assert restored.text == text
    assert restored.missing == ()
    assert unmask(masked.text, masked) == text


@pytest.mark.parametrize("path", sorted(BOOK.rglob("*.md*")), ids=lambda p: p.name)
def test_round_trip_on_the_book(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    masked = mask(text, load_glossary(None))
    assert unmask(masked.text, masked) == text
    assert "```" not in masked.text  # every fence is behind a placeholder


def _only(masked: Masked, kind: str) -> list[str]:
    return [value for pid, value in masked.originals.items() if pid.startswith(kind)]


def test_what_is_masked_and_what_stays_translatable() -> None:
    masked = mask(SAMPLES["markdown link"] + SAMPLES["fence"] + SAMPLES["glossary"], GLOSSARY)
    assert "[⟦T1⟧ docs](⟦U1⟧)" in masked.text  # link text stays translatable, the target does not
    assert _only(masked, "U") == ["https://docs.ros.org/en/humble/Tutorials.html"]
    assert _only(masked, "C") == ["```python\nimport rclpy\nprint('x')\n```"]
    assert _only(masked, "T") == ["ROS", "ROS 2", "Isaac ROS", "Isaac Sim", "URDF", "C++"]
    assert "PROS stays" in masked.text  # whole words only
    assert "import" not in masked.text


def test_placeholder_shaped_input_is_never_confused_with_ours() -> None:
    masked = mask(SAMPLES["placeholder-like text next to real code"])
    assert masked.originals["C3"] == "```\nreal()\n```"  # C1 and C2 are taken by the prose
    assert set(masked.originals) == {"L1", "L2", "C3"}
    assert restore(masked.text, masked).text == SAMPLES["placeholder-like text next to real code"]


def test_same_term_same_placeholder() -> None:
    masked = mask("URDF here, URDF there.", GLOSSARY)
    assert masked.text == "⟦T1⟧ here, ⟦T1⟧ there."


def test_urls_keep_their_parentheses_but_not_the_sentence() -> None:
    masked = mask(SAMPLES["url with parens"] + SAMPLES["url at sentence end"] + SAMPLES["urdu around code"])
    assert _only(masked, "U") == [
        "https://en.wikipedia.org/wiki/Kalman_filter_(disambiguation)",
        "https://nav2.org/docs",
        "https://x.org/a",
        "https://docs.ros.org",
    ]


def test_currency_is_not_math_but_formulas_are() -> None:
    masked = mask(SAMPLES["math"])
    assert _only(masked, "M") == ["$E = mc^2$"]
    assert _only(masked, "D") == ["$$\n\\tau = J^T F\n$$"]
    assert "costs $5 and $10." in masked.text


MANGLED = {
    "spaces inside": "⟦ C1 ⟧",
    "space between letter and digit": "⟦C 1⟧",
    "double square brackets": "[[C1]]",
    "single square brackets": "[C1]",
    "lower case": "⟦c1⟧",
    "urdu digits": "⟦C۱⟧",
    "bidi marks inside": "⟦\u200eC1\u200f⟧",
    "mixed brackets": "⟦C1]",
    "cjk brackets": "【C1】",
}


@pytest.mark.parametrize("form", MANGLED.values(), ids=MANGLED.keys())
def test_restore_accepts_mangled_placeholders(form: str) -> None:
    text = "Before\n\n```py\nx = 1\n```\n\nafter."
    masked = mask(text)
    assert "⟦C1⟧" in masked.text
    restored = restore(masked.text.replace("⟦C1⟧", form), masked)
    assert restored.text == text
    assert restored.missing == ()


def test_dropped_code_block_is_appended_and_reported() -> None:
    text = "Intro `x`.\n\n```py\nfirst()\n```\n\nMiddle.\n\n```py\nsecond()\n```\n\nEnd https://a.org\n"
    masked = mask(text)
    reply = masked.text.replace("⟦C2⟧", "").replace("⟦U1⟧", "")
    restored = restore(reply, masked)
    assert restored.missing == ("C2", "U1")
    assert restored.appended == ("C2",)
    assert restored.text.rstrip().endswith("```py\nsecond()\n```")
    assert restored.text.count("first()") == 1


def test_dropped_block_the_model_wrote_out_is_not_duplicated() -> None:
    masked = mask("Text.\n\n```py\nx = 1\n```\n")
    restored = restore("Text.\n\n```py\nx = 1\n```\n", masked)
    assert restored.missing == ("C1",)
    assert restored.appended == ()
    assert restored.text.count("x = 1") == 1


def test_code_block_moved_into_a_sentence_gets_its_own_lines() -> None:
    masked = mask("Run:\n\n```bash\nros2 run a b\n```\n")
    restored = restore("Run: ⟦C1⟧ and see.", masked)
    assert restored.text == "Run: \n```bash\nros2 run a b\n```\n and see."


def test_unknown_placeholders_are_left_alone() -> None:
    masked = mask("`a`")
    assert restore("⟦I1⟧ ⟦C9⟧ [T4]", masked).text == "`a` ⟦C9⟧ [T4]"


def test_dropped_front_matter_goes_back_to_the_top() -> None:
    text = "---\ntitle: X\n---\n\n# X\n"
    masked = mask(text)
    assert restore("# X (translated)\n", masked).text == "---\ntitle: X\n---\n\n# X (translated)\n"


SPLIT_CASES = {
    "sections": "\n\n".join(f"## Section {i}\n\n" + "Para text here. " * 30 for i in range(12)),
    "paragraphs only": "\n\n".join("Sentence ⟦I1⟧ more words. " * 20 for _ in range(15)),
    "one long line": "word ⟦T1⟧ " * 400,
    "no spaces at all": "⟦C12⟧" * 300,
}


@pytest.mark.parametrize("text", SPLIT_CASES.values(), ids=SPLIT_CASES.keys())
def test_split_is_lossless_bounded_and_never_cuts_a_placeholder(text: str) -> None:
    parts = split_masked(text, 1000)
    assert "".join(parts) == text
    assert len(parts) > 1
    assert all(len(part) <= 1000 for part in parts)
    for part in parts:
        assert part.count("⟦") == part.count("⟧")


def test_split_prefers_headings() -> None:
    parts = split_masked(SPLIT_CASES["sections"], 1200)
    assert all(part.startswith("## Section") for part in parts)


def test_short_text_is_one_part() -> None:
    assert split_masked("short", 1000) == ["short"]
