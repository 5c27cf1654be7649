"""The ``preview`` command: print a sample notice, or write it as an .eml file."""

from __future__ import annotations

import sys
from pathlib import Path

import jinja2

from sla_daemon.clock import SystemClock
from sla_daemon.errors import EX_CONFIG
from sla_daemon.preview import (
    preview_config,
    preview_names,
    render_sample,
    sample_world,
    terminal_text,
)


def run_preview(
    kind: str | None, config_path: Path | None, *, eml: Path | None, list_only: bool
) -> int:
    """Render the sample ``kind`` (or ``all``); print it, or write it to ``eml``.

    Returns 0, 2 for an unknown kind (the valid ones are listed) and 78 when a template
    does not render (the template and the error are named).
    """
    from sla_daemon.app import build_renderer
    from sla_daemon.rules_from_config import build_rules

    names = preview_names()
    if list_only or kind is None:
        print("\n".join([*names, "all"]))
        return 0 if list_only else 2
    if kind != "all" and kind not in names:
        print(f"preview: unknown kind {kind!r}; one of: {', '.join(names)}, all", file=sys.stderr)
        return 2
    config = preview_config(config_path)
    rules = build_rules(config)
    world = sample_world(rules, build_renderer(config, rules), SystemClock().now())
    chosen = names if kind == "all" else [kind]
    if eml is not None and kind == "all":
        eml.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        try:
            message = render_sample(name, world)
        except jinja2.TemplateError as exc:
            where = (
                f" ({exc.name}:{exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
            )
            print(f"preview: the {name} notice does not render{where}: {exc}", file=sys.stderr)
            return EX_CONFIG
        if eml is None:
            if len(chosen) > 1:
                print("=" * 78)
            print(terminal_text(message))
            continue
        target = eml / f"{name}.eml" if kind == "all" else eml
        target.write_bytes(message.as_bytes())
        print(f"wrote {target}")
    return 0
