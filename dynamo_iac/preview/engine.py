"""Offline engine: run a Pulumi program in-process under a recording mock monitor.

No engine, no plugins, no network. Every registered resource becomes a RecordedResource with
its inputs (unknowns as "(known after apply)", secrets as "[secret]" — the value never leaves
here), parent, provider and dependencies; output order is sorted by URN, never by registration.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable

from .record import SECRET, UNKNOWN, RecordedResource, StackRecord

_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _mask(value: Any) -> Any:
    """A secret's shape without its values: map keys stay (they name, not hold, the secret)."""
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return SECRET


def _clean(value: Any, path: str, secrets: list[str]) -> Any:
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            secrets.append(path or "$")
            return _mask(value.get("value"))
        return {k: _clean(v, f"{path}.{k}" if path else k, secrets) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_clean(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    from pulumi.output import Unknown

    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _type_of(annotation: Any) -> Any:
    from pulumi import _types

    return _types.unwrap_optional_type(annotation) if annotation is not None else None


def _computed(value: Any, typ: Any) -> Any:
    """An echoed input with every field its output type declares but the program left unset
    marked unknown, at any depth: such a field (a security group id inside vpcConfig, a
    Filestore network's ipAddresses) is the provider's to compute, so a preview does not know
    it. Without this the SDK reads it as a known None and passes null/'' on to other resources."""
    import typing

    from pulumi import _types
    from pulumi.runtime import rpc

    typ = _type_of(typ)
    if rpc.is_rpc_secret(value):
        return rpc.wrap_rpc_secret(_computed(rpc.unwrap_rpc_secret(value), typ))
    if typ is None:
        return value
    args = typing.get_args(typ)
    if isinstance(value, dict) and _types.is_output_type(typ):
        fields = _types.output_type_types(typ)
        out = {k: _computed(v, fields.get(k)) for k, v in value.items()}
        out.update({k: rpc.UNKNOWN for k in fields if k not in value})
        return out
    if isinstance(value, dict) and len(args) == 2:           # Mapping[str, T]
        return {k: _computed(v, args[1]) for k, v in value.items()}
    if isinstance(value, list) and len(args) == 1:           # Sequence[T]
        return [_computed(v, args[0]) for v in value]
    return value


# Providers that return the planned object itself in a preview (nothing nested is computed
# before apply): the Kubernetes provider echoes its inputs, so `ns.metadata.name` stays known.
_ECHOING_PROVIDERS = ("kubernetes:",)


def run_program(program: Callable[[], None], *, project: str, stack: str, config: dict[str, str] | None = None,
                secret_keys: list[str] | None = None) -> StackRecord:
    import pulumi
    from pulumi import _types
    from pulumi.runtime import mocks, rpc, settings
    from pulumi.runtime.config import set_all_config

    record = StackRecord(stack=stack, project=project)
    seen: dict[str, RecordedResource] = {}
    duplicates: list[str] = []
    classes: dict[str, type] = {}       # type token → the SDK class, for its output types

    def _learn_class(args: pulumi.ResourceTransformationArgs) -> None:
        classes.setdefault(args.type_, type(args.resource))
        return None

    class _Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            # echo inputs; top-level outputs not among them stay unknown (the SDK's preview rule),
            # nested ones are marked unknown here — as the provider's own preview would
            cls = classes.get(args.typ)
            if cls is None or not args.custom or args.typ.startswith(_ECHOING_PROVIDERS):
                return None, dict(args.inputs)
            types = _types.resource_types(cls)
            return None, {k: _computed(v, types.get(k)) for k, v in args.inputs.items()}

        def call(self, args: pulumi.runtime.MockCallArgs):
            return {}

    class _Monitor(mocks.MockMonitor):
        def RegisterResource(self, request):
            resp = super().RegisterResource(request)
            raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
            secrets: list[str] = []
            inputs = _clean(dict(raw), "", secrets)
            if resp.urn in seen:          # the real engine rejects the program; never merge silently
                duplicates.append(resp.urn)
                return resp
            seen[resp.urn] = RecordedResource(
                urn=resp.urn, type=request.type, name=request.name, parent=request.parent or None,
                provider=request.provider or None, dependencies=sorted(set(request.dependencies)),
                inputs=inputs, custom=request.custom, protect=request.protect,
                retain_on_delete=bool(getattr(request, "retainOnDelete", False)),
                delete_before_replace=bool(request.deleteBeforeReplace),
                replace_on_changes=sorted(request.replaceOnChanges), secret_paths=sorted(secrets))
            return resp

    m = _Mocks()
    monitor = _Monitor(m)
    # a fresh root stack per run: set_mocks keeps an existing one, and with it the exports
    # (and transformations) of the previous run in this process
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(m, project=project, stack=stack, preview=True, monitor=monitor)
    set_all_config(dict(config or {}), list(secret_keys or []))
    error: list[BaseException] = []

    @pulumi.runtime.test
    def _run():
        try:
            pulumi.runtime.register_stack_transformation(_learn_class)
            program()
        except BaseException as e:   # surfaced below, outside the event loop
            error.append(e)

    _run()
    if error:
        raise error[0]
    if duplicates:
        from ..errors import DynamoIacError, Problem

        raise DynamoIacError([Problem(urn, "duplicate resource URN: two resources of one type have the same name "
                                      "under the same parent type (the Pulumi engine rejects the program)",
                                      "give each resource (or each component instance) a unique name")
                              for urn in sorted(set(duplicates))])
    root = pulumi.runtime.get_root_resource()
    outputs = getattr(root, "outputs", None) or {}
    record.outputs = {}
    for k, v in sorted(outputs.items()):
        record.outputs[k] = _resolve_output(v)
    record.resources = [seen[u] for u in sorted(seen) if not seen[u].type == "pulumi:pulumi:Stack"]
    return record


def _resolve_output(v: Any) -> Any:
    import pulumi

    if isinstance(v, pulumi.Output):
        async def get():
            known = await v.is_known()
            secret = await v.is_secret()
            if secret:
                return SECRET
            if not known:
                return UNKNOWN
            return await v.future()
        try:
            return asyncio.get_event_loop().run_until_complete(get())
        except Exception:
            return UNKNOWN
    return v
