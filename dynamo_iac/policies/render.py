"""Rich rendering of a PolicyReport (used by `dynamo-iac policy` and `dynamo-iac plan`)."""
from __future__ import annotations

from typing import Any, Sequence

from .model import Rule
from .runner import PolicyReport


def resource_label(urn: str) -> str:
    """urn:pulumi:stack::project::parent$type::name → type::name (the stack itself for "")."""
    if not urn:
        return "(stack)"
    parts = urn.split("::")
    if len(parts) < 4:
        return urn
    types = parts[2].split("$")
    return f"{types[-1]}::{parts[3]}"


def render(report: PolicyReport, console: Any, verbose: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    n_m, n_a = len(report.mandatory), len(report.advisory)
    if report.violations:
        table = Table(show_lines=True, expand=True, title=f"Policy report — {report.stack}", title_justify="left")
        table.add_column("level", no_wrap=True)
        table.add_column("rule", no_wrap=True)
        table.add_column("resource", overflow="fold", max_width=48)
        table.add_column("violation and fix", overflow="fold", ratio=1)
        for v in report.violations:
            style = "bold red" if v.level == "mandatory" else "yellow"
            body = Text(v.message)
            if v.fix:
                body.append("\nfix: ", style="green").append(v.fix)
            table.add_row(Text(v.level, style=style), v.rule, resource_label(v.urn), body)
        console.print(table)
    if verbose and report.skipped:
        console.print("[dim]not evaluated:[/dim]")
        for s in report.skipped:
            console.print(f"[dim]  {s.rule} {resource_label(s.urn)}: {s.reason}[/dim]", soft_wrap=True)
    verdict = "[bold red]FAILED[/bold red]" if report.failed else "[bold green]passed[/bold green]"
    console.print(f"policies {verdict}: {len(report.rules)} rules, {n_m} mandatory and {n_a} advisory "
                  f"violation(s), {len(report.skipped)} not evaluated", soft_wrap=True)


def render_rules(rules: Sequence[Rule], console: Any) -> None:
    """A table on a terminal; elsewhere (pipes, CI logs) one block per rule, whatever the width."""
    if not console.is_terminal:
        for r in rules:
            settings = ", ".join(r.config_schema())
            console.print(f"{r.name}  [{r.level}, {r.scope}]", markup=False, highlight=False, soft_wrap=True)
            console.print(f"    {r.description}", markup=False, highlight=False, soft_wrap=True)
            if settings:
                console.print(f"    settings: {settings}", markup=False, highlight=False, soft_wrap=True)
        return
    from rich.table import Table

    table = Table(expand=True, title="dynamo-iac policy rules", title_justify="left")
    table.add_column("rule", no_wrap=True)
    table.add_column("level", no_wrap=True)
    table.add_column("scope", no_wrap=True)
    table.add_column("description", ratio=1)
    table.add_column("settings", overflow="fold")
    for r in rules:
        table.add_row(r.name, r.level, r.scope, r.description, ", ".join(r.config_schema()) or "-")
    console.print(table)
