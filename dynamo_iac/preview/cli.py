"""`dynamo-iac plan -s STACK [--out DIR] [--json]`: the whole stack, offline, before anything exists.

Prints the resource tree, the capacity plan with its allocation map, the cost and the policy
report; writes DIR/plan.json and DIR/manifests/*.yaml. Exit 1 on an infeasible plan, an invalid
manifest or a mandatory policy violation.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from .gcpause import gc_paused


def _clear(out: Path) -> None:
    """Outputs of an earlier run must not outlive a failed one. The directory is made (and found
    writable) here, before the stack runs, so a bad --out fails first and plainly."""
    from ..errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a directory", "--out",
                          f"pass a directory (plan writes DIR/plan.json and DIR/manifests/), e.g. --out {out}.d")
    try:
        (out / "manifests").mkdir(parents=True, exist_ok=True)
        (out / "plan.json").unlink(missing_ok=True)
        for old in (out / "manifests").glob("*.yaml"):
            old.unlink()
    except OSError as e:
        raise ConfigError(f"cannot write to {out}: {e.strerror}", "--out",
                          "pass a directory you can create and write to") from None


def plan_stack(stack: str, out: Path | None, *, status: Any = None, root: Path | None = None,
               crd_dir: Path | None = None) -> dict[str, Any]:
    """Run everything; returns the parts the printer needs (also used by tests)."""
    from ..policies.runner import evaluate_record
    from .checks import check_manifests, resolve_crd
    from .report import manifest_unknowns, manifests, write_outputs
    from .stack import run_stack

    def step(text: str) -> None:
        if status is not None:
            status.update(text)

    if out is not None:
        _clear(out)
    crd = resolve_crd(crd_dir)
    step(f"running stack {stack} offline …")
    run = run_stack(stack, root)
    step("checking policies …")
    policy = evaluate_record(run.record, raw_config=run.raw_config, config_file=run.path.name)
    step("validating manifests …")
    objs = manifests(run.record)
    unknowns = manifest_unknowns(objs)
    checks = check_manifests(objs, crd)
    capacity = run.capacity
    cap = capacity.to_dict() if capacity is not None else None
    cost = ({"usd_per_hour": capacity.cost_per_hour(), "usd_per_month": capacity.cost_per_month()}
            if capacity is not None else None)
    files: list[str] = []
    if out is not None:
        files = write_outputs(out, run.record, objs, unknowns, capacity=cap, cost=cost,
                              policy=[v.to_dict() for v in policy.violations], checks=checks.to_dict())
    return {"run": run, "policy": policy, "manifests": objs, "problems": checks.problems, "files": files,
            "capacity": capacity, "cost": cost, "checks": checks, "unknowns": unknowns}


def register(app: typer.Typer) -> None:
    @app.command("plan")
    @gc_paused
    def plan_cmd(
        stack: str = typer.Option("aws-p5-disagg", "-s", "--stack",
                                  help="stack name (stacks/Pulumi.<stack>.yaml) or the path of a stack file"),
        out: Optional[Path] = typer.Option(None, "--out", help="write DIR/plan.json and DIR/manifests/*.yaml "
                                           "(default: out/<stack>)"),
        as_json: bool = typer.Option(False, "--json", help="print plan.json on stdout instead of the report"),
        crd_dir: Optional[Path] = typer.Option(
            None, "--crd-dir", help="Dynamo CRD YAMLs to check the DGD against (a dir, or one CRD exported with "
            "kubectl); default $DYNAMO_IAC_CRD_DIR or ../shared/reference/dynamo-crds; without one the CRD "
            "schema check is skipped (and reported so)"),
        root: Optional[Path] = typer.Option(None, "--root", file_okay=False,
                                            help="project dir (Pulumi.yaml, stacks/; graph paths are relative to it)"),
    ) -> None:
        """Preview a stack offline — no cloud account, no Pulumi CLI: resource tree, capacity plan,
        allocation map, cost, policy report, and every Kubernetes manifest."""
        from rich.console import Console

        from .report import MANIFEST_UNKNOWN, tree_lines

        from ..stacks.config import read_stack_file, stack_name

        name = stack_name(stack, read_stack_file(stack, root)[2])
        out_dir = out or Path("out") / name
        err = Console(stderr=True, highlight=False)
        con = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
        if err.is_terminal and not as_json:
            with err.status(f"planning {stack} …") as status:
                parts = plan_stack(stack, out_dir, status=status, root=root, crd_dir=crd_dir)
        else:
            parts = plan_stack(stack, out_dir, root=root, crd_dir=crd_dir)
        run, policy = parts["run"], parts["policy"]
        if as_json:
            sys.stdout.write((out_dir / "plan.json").read_text())
        else:
            cfg = run.config
            con.rule(f"[bold]dynamo-iac plan[/bold] · stack {run.stack}")
            con.print(f"cloud [bold]{cfg.cloud}[/bold]{' · ' + cfg.region if cfg.region else ''} · graph "
                      f"[bold]{run.graph.name}[/bold] ({run.graph.backend}, "
                      f"{'disaggregated' if run.graph.is_disaggregated else 'aggregated'}) · "
                      f"Dynamo {run.graph.dynamo_version}")
            con.rule(f"resources ({len(run.record.resources)})")
            for line in tree_lines(run.record):
                con.print(line, markup=False)
            if parts["capacity"] is not None:
                from ..plan.render import print_plan

                con.rule("capacity")
                print_plan(parts["capacity"], con)
            con.rule("policies")
            from ..policies.render import render as render_policy

            render_policy(policy, con)
            con.rule("manifests")
            checks = parts["checks"]
            unknowns = parts["unknowns"]
            for f in parts["files"]:
                notes = [n for n in (checks.not_validated.get(f.removeprefix("manifests/")),) if n]
                if f in unknowns:
                    notes.append(f"known after apply, written as {MANIFEST_UNKNOWN}: {', '.join(unknowns[f])}")
                con.print(f"  {out_dir / f}" + "".join(f"  ({n})" for n in notes), markup=False)
            con.print(f"  {out_dir / 'plan.json'}", markup=False)
            if checks.crd is None:
                con.print(f"[yellow]note:[/yellow] Dynamo CRD schema check skipped (no CRD available): "
                          f"{checks.crd_status['enable']}", soft_wrap=True)
            for p in parts["problems"]:
                con.print(f"[red]invalid manifest:[/red] {p}", markup=True)
        failed = bool(parts["problems"]) or policy.failed
        if failed:
            reasons = (["invalid manifests"] if parts["problems"] else []) + \
                      (["mandatory policy violations"] if policy.failed else [])
            err.print(f"[red]plan failed:[/red] {', '.join(reasons)}")
            raise typer.Exit(1)
