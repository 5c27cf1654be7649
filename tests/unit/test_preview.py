"""``sla-daemon preview``: a sample of every notice kind, on the terminal or as an .eml."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import strict
from pathlib import Path

import pytest

from sla_daemon.cli import main
from sla_daemon.core.model import NoticeKind
from sla_daemon.demo import demo_config_text
from sla_daemon.preview import SAMPLES, preview_names


def test_every_notice_kind_has_a_preview_sample() -> None:
    """A new NoticeKind without a sample fails here, so preview can show every kind."""
    missing = [kind for kind in NoticeKind if kind not in SAMPLES]
    assert missing == []


def test_list_names_every_kind_and_all(capsys: pytest.CaptureFixture[str]) -> None:
    """--list prints one name a line: each kind, the re-escalation variant, and all."""
    assert main(["preview", "--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == [*(str(kind) for kind in SAMPLES), "re_escalation", "all"]


def test_preview_prints_headers_and_the_text_part(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --config the demo's team and accounts fill the sample breach."""
    assert main(["preview", "breach"]) == 0
    out = capsys.readouterr().out
    head, _, body = out.partition("\n\n")
    assert "From: Acme Support <support@acme.example>" in head
    assert "To: alice@acme.example, lead@acme.example" in head
    assert "X-SLA-Daemon: breach" in head
    assert "Auto-Submitted: auto-generated" in head
    assert body.startswith("We promised Globex we would send findings and an action plan")
    assert "What the client wrote (Dana Lee" in body
    assert "Europe/Berlin" in body  # the demo's time zone
    assert "<html" not in out


def test_preview_eml_writes_a_complete_strictly_valid_message(tmp_path: Path) -> None:
    """--eml writes text and HTML parts to a file that parses without any defect."""
    target = tmp_path / "warning.eml"
    assert main(["preview", "warning", "--eml", str(target)]) == 0
    parsed = BytesParser(policy=strict).parsebytes(target.read_bytes())
    assert isinstance(parsed, EmailMessage)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["X-SLA-Daemon"] == "warning"


def test_preview_all_writes_one_file_per_name(tmp_path: Path) -> None:
    """`preview all --eml DIR` writes <name>.eml for every kind and variant."""
    assert main(["preview", "all", "--eml", str(tmp_path / "out")]) == 0
    written = sorted(p.stem for p in (tmp_path / "out").glob("*.eml"))
    assert written == sorted(preview_names())


def test_unknown_kind_is_refused_with_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt kind exits 2 and lists what preview knows."""
    assert main(["preview", "breech"]) == 2
    err = capsys.readouterr().err
    assert "unknown kind 'breech'" in err and "breach" in err


def _config(tmp_path: Path, extra: str = "") -> Path:
    text = demo_config_text(tmp_path, 2525).replace("name: Acme Support", "name: Initrode Care")
    path = tmp_path / "config.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_preview_uses_the_given_configuration_and_its_templates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--config brings the team's name and a templates_dir override into the sample."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "breach.txt.j2").write_text("Ours: {{ account_name }} is {{ late_by }} late.\n")
    path = _config(tmp_path, f"templates_dir: {templates}\n")
    assert main(["--config", str(path), "preview", "breach"]) == 0
    out = capsys.readouterr().out
    assert "Ours: Globex is 1h 10m late." in out
    assert main(["--config", str(path), "preview", "warning"]) == 0
    assert "Initrode Care SLA monitor" in capsys.readouterr().out


def test_a_broken_template_is_named_and_exits_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template that does not render is reported with the notice it belongs to."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "warning.txt.j2").write_text("{{ no_such_variable }}\n")
    path = _config(tmp_path, f"templates_dir: {templates}\n")
    assert main(["--config", str(path), "preview", "warning"]) == 78
    err = capsys.readouterr().err
    assert "the warning notice does not render" in err and "no_such_variable" in err


def test_an_invalid_configuration_falls_back_to_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that does not validate is reported on stderr; the demo's sample is shown."""
    path = tmp_path / "bad.yaml"
    path.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    assert main(["--config", str(path), "preview", "auto_ack"]) == 0
    captured = capsys.readouterr()
    assert "preview.config_invalid" in captured.err
    assert "Mars/Olympus" in captured.err
    assert "Auto-Submitted: auto-replied" in captured.out
