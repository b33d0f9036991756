"""`dynamo-iac policy -s STACK [--config FILE] [--json]`: the CrossGuard rules, offline."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from ..preview.gcpause import gc_paused


def register(app: typer.Typer) -> None:
    @app.command("policy")
    @gc_paused
    def policy_cmd(
        stack: Optional[str] = typer.Option(None, "-s", "--stack",
                                            help="stack name (stacks/Pulumi.<stack>.yaml) or the path of a stack file"),
        root: Optional[Path] = typer.Option(None, "--root", file_okay=False,
                                            help="project dir (Pulumi.yaml, stacks/; graph paths are relative to it)"),
        config: Optional[Path] = typer.Option(
            None, "--config", dir_okay=False,
            help="policy settings (JSON or YAML, Pulumi --policy-pack-config format); overrides the stack's "
                 "dynamo-iac:policy"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
        list_rules: bool = typer.Option(False, "--list", help="list the rules and their settings"),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="also show what could not be evaluated"),
    ) -> None:
        """Run the policy rules (the same as the CrossGuard pack in policies/) on a stack, offline:
        the stack's program runs under the offline engine, then every rule checks what it recorded.
        Exits 1 on a mandatory violation."""
        from rich.console import Console

        from ..errors import DynamoIacError
        from .render import render, render_rules
        from .rules import RULES

        out = Console(highlight=False, soft_wrap=False)
        if list_rules:
            if as_json:
                import json

                sys.stdout.write(json.dumps([{"rule": r.name, "level": r.level, "scope": r.scope,
                                              "description": r.description, "settings": r.config_schema()}
                                             for r in RULES], indent=2, sort_keys=True) + "\n")
            else:
                render_rules(RULES, out)
            return
        if not stack:
            raise DynamoIacError("no stack given", "-s/--stack", "pass -s <stack>, e.g. -s aws-p5-disagg")
        from .runner import evaluate_stack

        err = Console(stderr=True, highlight=False)
        if as_json or not err.is_terminal:
            report = evaluate_stack(stack, config_file=config, root=root)
        else:
            with err.status(f"running stack {stack} offline and checking {len(RULES)} rules…"):
                report = evaluate_stack(stack, config_file=config, root=root)
        if as_json:
            sys.stdout.write(report.to_json())
        else:
            render(report, out, verbose=verbose)
        if report.failed:
            raise typer.Exit(1)
