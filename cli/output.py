"""Human-readable output of the commands (rich tables and a progress bar on stderr)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.retrieval import Passage

out = Console(soft_wrap=True)  # long URLs stay whole when piped


@contextmanager
def progress_bar(
    label: str, *, enabled: bool
) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(start(total), advance(n)) callbacks driving a progress bar on stderr."""
    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )
    task = progress.add_task(label, total=None)
    with progress:
        yield (lambda total: progress.update(task, total=total)), (lambda n: progress.advance(task, n))


def print_ingest(summary: Any) -> None:
    """Print an ingest summary as one line."""
    out.print(
        f"{summary.pages} pages: {summary.added} added, {summary.updated} updated, "
        f"{summary.skipped} unchanged, {summary.deleted} deleted; {summary.chunks} chunks indexed, "
        f"{summary.embedded} embedded, in {summary.seconds:.1f} s",
        highlight=False,
    )


def print_passages(passages: list[Passage]) -> None:
    """Print search results: title, heading, score, deep link and text."""
    if not passages:
        out.print("No passages found.")
    for rank, passage in enumerate(passages, start=1):
        out.print(
            f"[bold]{rank}. {escape(passage.title)}[/] › {escape(passage.heading)}  "
            f"[dim]score {passage.score:.3f}[/]"
        )
        out.print(f"   [link={passage.url}]{escape(passage.url)}[/link]")
        snippet = " ".join(passage.text.split())
        out.print(f"   {escape(snippet[:300])}{'…' if len(snippet) > 300 else ''}\n", highlight=False)


def print_eval(result: dict[str, Any]) -> None:
    """Print a retrieval evaluation as a table per mode."""
    if "ingest" in result:
        ingest = result["ingest"]
        out.print(
            f"corpus: {ingest['chunks']} documents ({ingest['embedded']} embedded this run, "
            f"{ingest['seconds']:.1f} s)"
        )
    if "sets" not in result:
        out.print(_eval_table(f"Retrieval (hybrid fusion: {result['fusion']})", result["modes"]))
        return
    for judged in result["sets"]:
        for split, modes in judged["splits"].items():
            title = (
                f"{judged['questions']}, {split} ({modes[0]['queries']} questions; fusion {result['fusion']})"
            )
            out.print(_eval_table(title, modes))


def _eval_table(title: str, modes: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("mode", "nDCG@10", "R@5", "R@10", "R@100", "MRR@10", "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for m in modes:
        table.add_row(
            m["mode"],
            *(
                f"{m[key]:.3f}"
                for key in ("ndcg_at_10", "recall_at_5", "recall_at_10", "recall_at_100", "mrr_at_10")
            ),
            f"{m['latency_p50_ms']:.1f}",
            f"{m['latency_p95_ms']:.1f}",
        )
    return table


def print_selection_eval(result: dict[str, Any]) -> None:
    """Print a selection-decline evaluation per split."""
    table = Table(
        title=f"Selection route declines ({result['selections']} selections, floor {result['floor']}, "
        f"tune split alone picks {result['tuned_floor']})"
    )
    for column in ("split", "questions", "declined", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    for r in result["reports"]:
        table.add_row(
            r["split"],
            str(r["questions"]),
            str(r["declined"]),
            *(f"{r[k]:.3f}" for k in ("precision", "recall", "f1")),
        )
    out.print(table)


def print_turn(output: dict[str, Any]) -> None:
    """Print a turn's answer, sources and the thread to continue."""
    if output.get("error"):
        out.print(f"[bold red]{escape(output['error']['message'])}[/]")
        return
    out.print(output["answer"], highlight=False, markup=False)
    if output.get("sources"):
        out.print("\n[bold]Sources[/]")
        for n, source in enumerate(output["sources"], start=1):
            line = f"[{n}] {source['title']} › {source['heading']}  {source['url']}"
            out.print(line, highlight=False, markup=False)
    out.print(
        f"\n[dim]route: {output['route']} · thread: {output['thread_id']} "
        f"· continue with --thread {output['thread_id']}[/]"
    )
