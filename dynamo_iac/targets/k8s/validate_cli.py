"""`dynamo-iac validate FILE… [--crd-dir DIR] [--schema-only]`: one `path: message` line per error
on stdout; notes (what could not be checked) on stderr."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer


def validate_files(files: list[Path], crd_dir: Path | None, schema_only: bool,
                   notes: list[str] | None = None) -> list[str]:
    """Error lines for every document of every file; a file with no document is an error."""
    import yaml

    from ... import yamlio
    from .validate import check_manifest

    lines: list[str] = []
    for f in files:
        try:
            docs = list(yamlio.load_all(f.read_text()))
        except (OSError, yaml.YAMLError) as e:
            lines.append(f"{f}: cannot read YAML: {e}")
            continue
        if all(doc is None for doc in docs):
            lines.append(f"{f}: no YAML document to validate (fix: pass a file with at least one manifest)")
            continue
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            where = f"{f}#{i}" if len(docs) > 1 else str(f)
            problems, found = check_manifest(doc, crd_dir=crd_dir, schema_only=schema_only)
            lines += [f"{where}: {p}" for p in problems]
            if notes is not None:
                notes += [f"{where}: {n}" for n in found]
    return lines


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        files: List[Path] = typer.Argument(..., exists=True, dir_okay=False, help="YAML manifests (multi-document)"),
        crd_dir: Optional[Path] = typer.Option(None, "--crd-dir", help="CRD YAMLs (a dir, or one CRD exported "
                                               "with kubectl); default ../shared/reference/dynamo-crds"),
        schema_only: bool = typer.Option(False, "--schema-only", help="CRD schema only, skip admission rules"),
    ) -> None:
        """Validate manifests against the Dynamo CRDs (unknown fields reported) and the operator's
        admission rules; Kubernetes kinds against Kubernetes' schemas. Exit 0 valid, 1 invalid."""
        notes: list[str] = []
        lines = validate_files(list(files), crd_dir, schema_only, notes)
        for n in notes:
            sys.stderr.write(f"note: {n}\n")
        for line in lines:
            sys.stdout.write(line + "\n")
        if lines:
            raise typer.Exit(1)
        sys.stderr.write(f"{len(files)} file(s) valid\n")
