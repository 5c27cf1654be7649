"""Operator templates run in Jinja2's sandbox: no way from a template into Python's objects."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.sandbox import SecurityError

from sla_daemon.adapters.renderers import NoticeMailRenderer
from sla_daemon.core.model import NoticeKind
from sla_daemon.preview import SAMPLES, sample_world
from tests.hostile.cli import Endpoints, run_cli, write_config
from tests.unit.builders import NOW, rules

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ team_name.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.system('id') }}",
    "{{ self._TemplateReference__context }}",
    "{% set f = subject.format %}{{ f.__self__.__class__ }}",
]


def _override(tmp_path: Path, body: str) -> Path:
    templates = tmp_path / "templates"
    templates.mkdir(exist_ok=True)
    (templates / "auto_ack.txt.j2").write_text(body)
    return templates


@pytest.mark.parametrize("escape", ESCAPES)
def test_a_template_reaching_into_python_objects_is_refused(escape: str, tmp_path: Path) -> None:
    """Each classic sandbox escape in an override raises instead of rendering anything."""
    rules_ = rules()
    renderer = NoticeMailRenderer(_override(tmp_path, escape), rules_.team, "UTC", rules=rules_)
    world = sample_world(rules_, renderer, NOW)
    with pytest.raises(SecurityError, match="unsafe"):
        SAMPLES[NoticeKind.AUTO_ACK](world)


def test_preview_names_the_refused_template_instead_of_a_traceback(tmp_path: Path) -> None:
    """``preview`` of a hostile override exits 78 with the sandbox's reason, no traceback."""
    ends = Endpoints("127.0.0.1", 1, "none", "u", "127.0.0.1", 1, "none")
    config = write_config(tmp_path / "config.yaml", tmp_path / "state", ends)
    templates = _override(tmp_path, ESCAPES[0])
    config.write_text(config.read_text() + f"templates_dir: {templates}\n")
    result = run_cli(config, "unused", "preview", "auto_ack")
    assert result.returncode == 78
    assert "auto_ack notice does not render" in result.stderr
    assert "unsafe" in result.stderr
    assert "Traceback" not in result.stderr
