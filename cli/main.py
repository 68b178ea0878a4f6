"""The `tutor` command line.

Ingest the book, search it, evaluate retrieval, ask, serve, mint tokens, check the configured models.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from cli.doctor import doctor
from cli.output import (
    print_eval,
    print_ingest,
    print_passages,
    print_selection_eval,
    print_turn,
    progress_bar,
)
from cli.serve import serve
from cli.token import token
from core.runtime import open_book_index
from core.settings import get_settings

T = TypeVar("T")
app = typer.Typer(help="Textbook Tutor: an AI tutor backend for Docusaurus textbooks.", no_args_is_help=True)
err = Console(stderr=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one clear line and exit status 2."""
    from cli.errors import USER_ERRORS

    try:
        return asyncio.run(coro)
    except USER_ERRORS as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="Docusaurus docs folder (or one .md/.mdx file).")],
    recreate: Annotated[bool, typer.Option("--recreate", help="Drop the collection and rebuild it.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Index a book incrementally: unchanged chunks are neither embedded nor written again."""
    from ingest.book import ingest_book

    settings = get_settings()

    async def main() -> Any:
        async with open_book_index(settings) as index:
            with progress_bar("Indexing", enabled=not as_json) as (start, advance):
                return await ingest_book(
                    index, path, settings, recreate=recreate, on_start=start, on_progress=advance
                )

    summary = run(main())
    for problem in summary.problems:
        err.print(f"[yellow]skipped[/] {problem['source']}: {problem['message']}", highlight=False)
    if as_json:
        typer.echo(json.dumps(summary.as_json()))
    else:
        print_ingest(summary)
    if summary.pages == 0:
        err.print("[bold red]error:[/] nothing could be indexed", highlight=False)
        raise typer.Exit(1)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[
        int | None, typer.Option("-k", min=1, max=100, help="Number of passages (default SEARCH_K).")
    ] = None,
    mode: Annotated[str, typer.Option(help="dense, sparse or hybrid.")] = "hybrid",
    as_json: JsonFlag = False,
) -> None:
    """Print the best passages of the book for a query."""
    from core.retrieval import search as search_index

    if mode not in ("dense", "sparse", "hybrid"):
        raise typer.BadParameter("must be dense, sparse or hybrid", param_hint="--mode")
    settings = get_settings()

    async def main() -> Any:
        async with open_book_index(settings) as index:
            await index.require()
            limit = k or settings.search_k
            return search_index(index, query, k=limit, mode=mode, fusion=settings.hybrid_fusion)  # type: ignore[arg-type]

    passages = run(main())
    if as_json:
        keys = ("doc_path", "title", "heading", "url", "score", "text")
        typer.echo(
            json.dumps([{key: p.as_json()[key] for key in keys} for p in passages], ensure_ascii=False)
        )
    else:
        print_passages(passages)


@app.command("eval")
def evaluate(
    beir: Annotated[
        Path | None, typer.Option(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/).")
    ] = None,
    questions: Annotated[
        list[Path] | None,
        typer.Option(
            help="Questions file for the ingested book; repeat it to evaluate several "
            "(e.g. book/questions.jsonl and book/plain_questions.jsonl). Files whose questions "
            "name a split (tune/test) are reported per split as well.",
        ),
    ] = None,
    selections: Annotated[
        Path | None,
        typer.Option(help="Labelled selections file: precision/recall of the selection route's declines."),
    ] = None,
    sentence_vectors: Annotated[
        bool,
        typer.Option(
            "--sentence-vectors",
            help="With --beir: index the corpus with sentence vectors too (off by default: SciFact's "
            "abstracts gain nothing from them and take twice as long to index).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Retrieval quality (nDCG@10, Recall@5/10/100, MRR@10) and latency of each search mode.

    With --selections: how well the selection route (without a chat model) declines what a
    selection does not say.
    """
    from ingest import evaluate as ev

    if sum(bool(option) for option in (beir, questions, selections)) != 1:
        raise typer.BadParameter(
            "give exactly one of --beir DIR, --questions FILE (repeatable) or --selections FILE"
        )
    settings = get_settings()
    if selections is not None:
        evaluate_selections(selections, settings.selection_support_floor, as_json)
        return

    async def main() -> dict[str, Any]:
        async with open_book_index(settings) as index:
            result: dict[str, Any] = {"fusion": settings.hybrid_fusion}
            if beir is not None:
                with progress_bar("Indexing corpus", enabled=not as_json) as (start, advance):
                    target, queries, summary = await ev.prepare_beir(
                        index, beir, start, advance, sentence_vectors=sentence_vectors
                    )
                result["ingest"] = summary.as_json()
                reports = await ev.evaluate(target, queries, settings.hybrid_fusion)
                result["modes"] = [report.as_json() for report in reports]
                return result
            result["sets"] = []
            for path in questions or []:
                splits = await ev.evaluate_by_split(index, ev.load_questions(path), settings.hybrid_fusion)
                result["sets"].append(
                    {
                        "questions": str(path),
                        "splits": {
                            split: [r.as_json() for r in reports] for split, reports in splits.items()
                        },
                    }
                )
            result["modes"] = result["sets"][0]["splits"]["all"]  # the first file's, as before
            return result

    result = run(main())
    if as_json:
        typer.echo(json.dumps(result))
    else:
        print_eval(result)


def evaluate_selections(path: Path, floor: float, as_json: bool) -> None:
    """Scores the labelled selections with the embedding model alone: no database, no index."""
    from core.providers import make_embeddings
    from ingest.selection_eval import BadSelections
    from ingest.selection_eval import evaluate_selections as measure

    try:
        embeddings, _ = make_embeddings(get_settings())
        result = measure(path, embeddings, floor)
    except (OSError, BadSelections) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result))
    else:
        print_selection_eval(result)


@app.command()
def ask(
    message: Annotated[str, typer.Argument(help="The question or request.")],
    thread: Annotated[
        str | None, typer.Option(help="Continue this conversation (default: a new one).")
    ] = None,
    mode: Annotated[str, typer.Option(help="auto, ask, selection, personalize or translate.")] = "auto",
    selected_text: Annotated[str | None, typer.Option(help="Highlighted text to answer from.")] = None,
    page: Annotated[str | None, typer.Option(help="Doc path or URL of the page you are on.")] = None,
    lang: Annotated[str | None, typer.Option(help="Target language for translate, e.g. ur.")] = None,
    content: Annotated[str | None, typer.Option(help="Text to personalize or translate.")] = None,
    profile: Annotated[Path | None, typer.Option(help="Learner profile as a JSON file.")] = None,
    user: Annotated[str | None, typer.Option(help="User id the thread belongs to.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ask the tutor: answers from the book with citations (extractive without CHAT_MODEL)."""
    from cli.ask import run_turn

    output = run(
        run_turn(
            get_settings(),
            {
                "message": message,
                "mode": mode,
                "selected_text": selected_text,
                "page": page,
                "target_language": lang,
                "content": content,
            },
            thread=thread,
            user=user,
            profile_file=profile,
        )
    )
    if as_json:
        typer.echo(json.dumps(output, ensure_ascii=False))
    else:
        print_turn(output)
    if output.get("error"):
        raise typer.Exit(3)


app.command()(serve)
app.command()(token)
app.command()(doctor)


def main() -> None:
    """The `tutor` console script."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    app()
