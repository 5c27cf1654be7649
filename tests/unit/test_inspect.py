"""``sla-daemon inspect``: .eml files, a Maildir and an mbox, run through the real CLI."""

from __future__ import annotations

import json
import logging
import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from sla_daemon.cli import main
from sla_daemon.core.threads import conversation_id_for_root
from sla_daemon.inspection import CONFIG_FIELDS, FIELDS
from sla_daemon.logs import reset_logging
from tests.mailbuild import build_mail
from tests.unit.builders import NOW

CONFIG = """\
state_dir: {state}
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: imap.acme.example
    username: support@acme.example
    password_env: SLA_TEST_IMAP_PASSWORD_UNSET
smtp:
  host: smtp.acme.example
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
markers:
  action_plan:
    subject_tags: ["[Plan]"]
"""


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``main`` configures logging for the process; leave it as the next test expects."""
    root_level = logging.getLogger().level
    yield
    reset_logging()
    logging.getLogger().setLevel(root_level)


def _message(
    message_id: str,
    subject: str,
    *,
    sender: str = "dana@globex.example",
    to: str = "support@acme.example",
    parent: str | None = None,
    headers: dict[str, str] | None = None,
    body: str = "Hello",
) -> EmailMessage:
    return build_mail(
        message_id,
        sender=sender,
        to=to,
        subject=subject,
        at=NOW,
        body=body,
        parent=parent,
        headers=headers,
    )


def _conversation() -> list[EmailMessage]:
    """A client question, the team's answer with an action plan, and an out-of-office."""
    return [
        _message("q@globex.example", "Printer on fire"),
        _message(
            "a@acme.example",
            "Re: [Action Plan] Printer on fire",
            sender="support@acme.example",
            to="dana@globex.example",
            parent="q@globex.example",
            body="Action plan: water.\n",
        ),
        _message(
            "ooo@globex.example",
            "Automatic reply: Printer on fire",
            parent="a@acme.example",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    ]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["--log-level", "error", "inspect", *args, "--json"]) == 0
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _eml_files(tmp_path: Path) -> list[Path]:
    paths = []
    for number, message in enumerate(_conversation()):
        path = tmp_path / f"{number}.eml"
        path.write_bytes(message.as_bytes())
        paths.append(path)
    broken = tmp_path / "broken.eml"
    broken.write_bytes(b"this is not\na mail message\n")
    return [*paths, broken]


def test_eml_files_are_parsed_threaded_and_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line per file: the reply threads with its parent, the autoreply is flagged."""
    files = _eml_files(tmp_path)
    rows = _run(capsys, *map(str, files))
    assert [row["file"] for row in rows] == [str(path) for path in files]
    assert all(list(row) == list(FIELDS) for row in rows)
    question, answer, ooo, broken = rows

    conversation = conversation_id_for_root("q@globex.example")
    assert question["message_id"] == "q@globex.example"
    assert {question["conversation"], answer["conversation"], ooo["conversation"]} == {conversation}
    assert question["parent"] is None
    assert answer["parent"] == "q@globex.example"
    assert ooo["parent"] == "a@acme.example"
    assert question["from"] == "dana@globex.example"
    assert question["date"] == NOW.isoformat()

    assert question["automated"] is False
    assert question["automated_kind"] is None and question["automated_reasons"] == []
    assert ooo["automated"] is True
    assert ooo["automated_kind"] == "auto_reply"
    assert any("Auto-Submitted" in reason for reason in ooo["automated_reasons"])

    # Without a configuration, the default markers: subject tag and body pattern.
    assert answer["action_plan"] == "subject tag [Action Plan]"
    assert question["action_plan"] is None
    assert question["error"] is None

    assert broken["error"]
    assert all(broken[key] is None for key in FIELDS if key not in ("file", "error"))


def test_a_maildir_and_an_mbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Maildir's messages and an mbox's (file#N) are read; threading spans both."""
    first, answer, ooo = _conversation()
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(first)
    maildir.add(ooo)
    mbox = mailbox.mbox(tmp_path / "sent.mbox", create=True)
    mbox.add(answer)
    mbox.add(_message("other@globex.example", "Another matter"))
    mbox.flush()

    rows = _run(capsys, str(tmp_path / "Maildir"), str(tmp_path / "sent.mbox"))
    by_id = {row["message_id"]: row for row in rows}
    assert set(by_id) == {
        "q@globex.example",
        "ooo@globex.example",
        "a@acme.example",
        "other@globex.example",
    }
    assert by_id["a@acme.example"]["file"] == f"{tmp_path / 'sent.mbox'}#1"
    assert by_id["other@globex.example"]["file"] == f"{tmp_path / 'sent.mbox'}#2"
    assert by_id["ooo@globex.example"]["file"].startswith(str(tmp_path / "Maildir"))
    thread = {by_id[i]["conversation"] for i in ("q@globex.example", "a@acme.example")}
    assert thread == {by_id["ooo@globex.example"]["conversation"]}
    assert by_id["other@globex.example"]["conversation"] not in thread


def test_with_a_config_role_account_and_its_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--config`` adds role and account, uses its markers, and opens no database."""
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(state=state), encoding="utf-8")
    question, answer, ooo = _conversation()
    del answer["Subject"]
    answer["Subject"] = "Re: [Plan] Printer on fire"
    paths = []
    for number, message in enumerate((question, answer, ooo)):
        path = tmp_path / f"{number}.eml"
        path.write_bytes(message.as_bytes())
        paths.append(str(path))

    assert main(["--config", str(config), "inspect", *paths, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(list(row) == [*FIELDS, *CONFIG_FIELDS] for row in rows)
    assert [(row["role"], row["account"]) for row in rows] == [
        ("client", "Globex"),
        ("team", "Globex"),
        ("automated", None),
    ]
    assert rows[1]["action_plan"] == "subject tag [Plan]"
    assert not state.exists()


def test_the_table_is_readable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json: a header line, one line per message, reasons and errors below."""
    files = _eml_files(tmp_path)
    assert main(["--log-level", "error", "inspect", *map(str, files)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["FILE", "MESSAGE-ID", "CONVERSATION"]
    assert "q@globex.example" in out and "auto_reply" in out
    assert any(line.strip().startswith("automated: Auto-Submitted") for line in lines)
    assert any(line.strip().startswith("error: ") for line in lines)


def test_a_missing_path_is_an_error_row_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that cannot be read is reported in its row."""
    [row] = _run(capsys, str(tmp_path / "nope.eml"))
    assert row["file"] == str(tmp_path / "nope.eml")
    assert row["error"].startswith("cannot read")
    assert row["message_id"] is None


def test_a_maildirs_sent_subfolder_is_read_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The team's replies in a Maildir++ ``.Sent`` subfolder join their threads."""
    first, answer, ooo = _conversation()
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(first)
    maildir.add(ooo)
    maildir.add_folder("Sent").add(answer)

    rows = _run(capsys, str(tmp_path / "Maildir"))
    by_id = {row["message_id"]: row for row in rows}
    assert set(by_id) == {"q@globex.example", "a@acme.example", "ooo@globex.example"}
    assert "/.Sent/" in by_id["a@acme.example"]["file"]
    assert len({row["conversation"] for row in rows}) == 1
