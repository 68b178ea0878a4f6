"""`tutor token`: a signed dev token for the API (hs256 mode)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from core.settings import get_settings


def token(
    sub: Annotated[str, typer.Option("--sub", help="User id the token is for (its `sub` claim).")],
    ttl: Annotated[str, typer.Option("--ttl", help="Lifetime: 90s, 15m, 1h, 7d or seconds.")] = "1h",
) -> None:
    """Print a bearer token for the API, e.g. TOKEN=$(tutor token --sub alice)."""
    # Imported here so `tutor --help` doesn't pay for loading pyjwt and cryptography.
    from api.auth import mint_token, parse_ttl

    try:
        value = mint_token(get_settings(), sub, parse_ttl(ttl))
    except (ValueError, OSError) as exc:  # ValueError covers settings validation and bad --ttl/--sub
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    # Only the token on stdout, so shells can capture it.
    typer.echo(value)
