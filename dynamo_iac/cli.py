"""`dynamo-iac` command line. Sub-commands live next to what they drive and register here;
heavy modules (Pulumi, cloud SDKs) load only when their command runs."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import DynamoIacError

app = typer.Typer(
    name="dynamo-iac",
    help="NVIDIA Dynamo serving graphs as code: plan, render, validate and deploy to Kubernetes "
         "(EKS/AKS/GKE via Pulumi), Slurm or this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def report_error(e: DynamoIacError) -> None:
    """Every CLI's error lines: `error: path: message` + `fix: …`, the texts printed verbatim
    (a `[replica]` or `[a, b]` in them is not Rich markup)."""
    from rich.markup import escape

    con = _console()
    for p in e.problems:
        where = f"[bold]{escape(p.path)}[/bold]: " if p.path else ""
        fix = f"\n    [green]fix:[/green] {escape(p.fix)}" if p.fix else ""
        con.print(f"[red]error:[/red] {where}{escape(p.message)}{fix}", soft_wrap=True)


@app.command("render")
def render_cmd(
    graph: str = typer.Argument(..., help="graph file (YAML) or python module:attr"),
    api: Optional[str] = typer.Option(None, "--api", help="DGD API version: v1beta1 | v1alpha1 "
                                      "(default: the newest the graph's Dynamo release serves)"),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="write here instead of stdout"),
) -> None:
    """Render a graph to a DynamoGraphDeployment manifest (no cluster facts applied)."""
    from .graph import load_graph

    text = load_graph(graph).to_yaml(api)
    if out:
        write_output(out, text)
    else:
        sys.stdout.write(text)


def write_output(out: Path, text: str) -> None:
    """Write a command's output file, or say why it cannot be written."""
    if out.is_dir():
        raise DynamoIacError(f"{out} is a directory", "--out", f"name a file, e.g. {out / 'dgd.yaml'}")
    if not out.parent.is_dir():
        raise DynamoIacError(f"directory {out.parent} does not exist", "--out", f"create it: mkdir -p {out.parent}")
    try:
        out.write_text(text)
    except OSError as e:
        raise DynamoIacError(f"cannot write {out}: {e.strerror}", "--out", "choose a writable path") from None


@app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="YAML with a DynamoGraphDeployment"),
    to: str = typer.Option("yaml", "--to", help="yaml | python"),
    api: Optional[str] = typer.Option(None, "--api", help="re-render as v1beta1 | v1alpha1 (default: the file's)"),
) -> None:
    """Import an existing DGD manifest into the typed model and print it as YAML or Python."""
    import yaml

    from . import yamlio
    from .graph import DynamoGraph
    from .targets.k8s.render import dump_all

    if to not in ("yaml", "python"):
        raise DynamoIacError(f"--to {to!r} is not supported", "--to", "use yaml or python")
    if to == "python" and api is not None:
        raise DynamoIacError("--api applies to --to yaml; the Python graph renders either API", "--api",
                             "drop --api, and call graph.to_dgd(api=...) in the program")
    try:
        docs = [d for d in yamlio.load_all(file.read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise DynamoIacError(f"not valid YAML: {e}", str(file), "fix the YAML syntax") from None
    graphs, skipped = [], []
    for i, d in enumerate(docs):
        if isinstance(d, dict) and d.get("kind") == "DynamoGraphDeployment":
            graphs.append(DynamoGraph.from_dgd(d))
        else:
            kind = d.get("kind", "?") if isinstance(d, dict) else type(d).__name__
            skipped.append(f"document {i} ({kind})")
    if skipped:
        _console().print(f"[yellow]note:[/yellow] {file}: skipped {', '.join(skipped)} — only "
                         "DynamoGraphDeployment documents import into a graph")
    if not graphs:
        raise DynamoIacError("holds no DynamoGraphDeployment", str(file),
                             "import a DGD manifest; validate other kinds with `dynamo-iac validate`")
    if to == "python":
        for i, g in enumerate(graphs):
            sys.stdout.write(g.to_python("graph" if len(graphs) == 1 else f"graph_{i}"))
    else:
        sys.stdout.write(dump_all([g.to_dgd(api) for g in graphs]))


# sub-commands owned by other modules: (module, attribute, kind)
_SUBCOMMANDS = [
    ("dynamo_iac.targets.k8s.validate_cli", "register", "fn"),
    ("dynamo_iac.hardware.cli", "register", "fn"),
    ("dynamo_iac.preview.cli", "register", "fn"),
    ("dynamo_iac.policies.cli", "register", "fn"),
    ("dynamo_iac.targets.local.cli", "app", "local"),
    ("dynamo_iac.targets.slurm.cli", "app", "slurm"),
]


def _register() -> None:
    for module, attr, kind in _SUBCOMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("dynamo_iac"):
                continue          # that part is not installed in this build
            raise
        obj = getattr(mod, attr, None)
        if obj is None:
            continue
        if kind == "fn":
            obj(app)
        else:
            app.add_typer(obj, name=kind)


_register()


def main() -> None:
    try:
        app()   # standalone: click reports usage errors and exits with their codes
    except DynamoIacError as e:
        report_error(e)
        sys.exit(1)


if __name__ == "__main__":
    main()
