"""Mailbox changes against a real Dovecot: keywords set after reading, a recreated folder.

The daemon never stores anything on the server; a second client connection plays the
team member who sets ``$ActionPlan`` on a reply in Sent after it was sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.app import build_service
from sla_daemon.config import load_config
from sla_daemon.core.model import ConversationState
from sla_daemon.evaluation import evaluate_conversations
from sla_daemon.ports import FolderBatch, FolderCursor
from sla_daemon.service import SlaService
from tests.configs import MailboxSpec, Replace, password_env, write_config
from tests.conftest import ImapUser
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink
from tests.servers.sources import plain_imap_source

pytestmark = pytest.mark.integration

OVERRIDES = {
    "policies": Replace(
        {"standard": {"acknowledge": {"within": "1h"}, "action_plan": {"within": "48h"}}}
    ),
    "accounts": [{"name": "Globex", "domains": ["globex.example"], "owner": "alice@acme.example"}],
    "notices": {"digest_window": "5m"},  # the daemon's default: team notices batched
}


def _mail(
    message_id: str, sender: str, to: str, subject: str, at: datetime, parent: str = ""
) -> bytes:
    body = "Thanks, we are looking into it." if parent else "Please help."
    mail = build_mail(
        message_id, sender=sender, to=to, subject=subject, body=body, at=at, parent=parent or None
    )
    return mail.as_bytes()


def _request(at: datetime) -> bytes:
    return _mail(
        "req@globex.example", "Dana <dana@globex.example>", "support@acme.example", "Help", at
    )


def _reply(at: datetime) -> bytes:
    return _mail(
        "reply@acme.example",
        "Bob <bob@acme.example>",
        "dana@globex.example",
        "Re: Help",
        at,
        parent="req@globex.example",
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def service_for(
    tmp_path: Path, imap_user: ImapUser, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Build the daemon's service from a config file; sources and store closed after."""
    built: list[SlaService] = []
    support = MailboxSpec("support", imap_user, idle=None, poll_interval=None)
    for variable, password in password_env([support]).items():
        monkeypatch.setenv(variable, password)

    def build(inbox: str = "INBOX") -> SlaService:
        mailbox = dataclasses.replace(support, overrides={"folders": {"inbox": [inbox]}})
        path = write_config(
            tmp_path / "config.yaml", mailboxes=[mailbox], sink=smtp_sink, overrides=OVERRIDES
        )
        service = build_service(load_config(path))
        built.append(service)
        return service

    yield build
    for service in built:
        for source in service.sources:
            source.close()
        service.store.close()


def _only_status(service: SlaService) -> Any:
    [status] = evaluate_conversations(service.store, service.rules, datetime.now(UTC))
    return status


def _set_keyword(server: DovecotServer, user: str, folder: str, uid: int, keyword: str) -> None:
    client = server.connect(user)
    try:
        client.select_folder(folder)
        client.add_flags([uid], [keyword])
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _seed_answered_request(server: DovecotServer, user: str) -> tuple[datetime, int]:
    """A client request two hours old and a team reply without any marker; reply's UID."""
    asked = _now() - timedelta(hours=2)
    replied = asked + timedelta(minutes=10)
    server.append(user, "INBOX", _request(asked), asked)
    return replied, server.append(user, "Sent", _reply(replied), replied)


def test_action_plan_keyword_set_after_sending_is_picked_up_with_condstore(
    dovecot_server: DovecotServer, imap_user: ImapUser, service_for: Any
) -> None:
    """$ActionPlan set on the reply later moves the conversation to action_plan_sent."""
    user = imap_user.username
    replied, reply_uid = _seed_answered_request(dovecot_server, user)
    service = service_for()
    service.run_cycle()
    assert _only_status(service).state == ConversationState.AWAITING_ACTION_PLAN
    sent_cursor = service.store.cursors("support")["Sent"]
    assert sent_cursor.highest_modseq is not None

    _set_keyword(dovecot_server, user, "Sent", reply_uid, "$ActionPlan")
    with capture_logs() as logs:
        report = service.run_cycle()

    assert report.fetched == 0
    [changed] = [e for e in logs if e["event"] == "message.keywords_changed"]
    assert changed["message_id"] == "reply@acme.example"
    assert "$ActionPlan" in changed["keywords"]
    status = _only_status(service)
    assert status.state == ConversationState.ACTION_PLAN_SENT
    assert status.action_plan_at == replied
    moved = service.store.cursors("support")["Sent"]
    assert moved.highest_modseq is not None and moved.highest_modseq > sent_cursor.highest_modseq

    with capture_logs() as again:
        service.run_cycle()
    assert not [e for e in again if e["event"] == "message.keywords_changed"]


def test_waiting_keyword_is_picked_up_without_condstore(
    dovecot_server: DovecotServer, imap_user: ImapUser, service_for: Any
) -> None:
    """A source with CONDSTORE off refreshes recent flags: $WaitingOnClient pauses the clock."""
    user = imap_user.username
    _replied, reply_uid = _seed_answered_request(dovecot_server, user)
    service = service_for()
    [configured] = service.sources
    assert isinstance(configured, ImapSource)
    service.sources = [
        ImapSource(
            name="support",
            host=imap_user.host,
            port=imap_user.port,
            security="none",
            username=user,
            password=imap_user.password,
            inbox_folders=["INBOX"],
            sent_folders=["Sent"],
            timeout=10.0,
            use_condstore=False,
        )
    ]
    configured.close()
    service.run_cycle()
    assert service.store.cursors("support")["Sent"].highest_modseq is None
    assert _only_status(service).state == ConversationState.AWAITING_ACTION_PLAN

    _set_keyword(dovecot_server, user, "Sent", reply_uid, "$WaitingOnClient")
    service.run_cycle()

    assert _only_status(service).state == ConversationState.WAITING_ON_CLIENT


def test_recreated_inbox_folder_is_read_again_and_no_notice_goes_twice(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, service_for: Any
) -> None:
    """A folder deleted and made again (new UIDVALIDITY) is re-read; no auto-ack twice."""
    user = imap_user.username
    admin = dovecot_server.connect(user)
    admin.create_folder("Support")
    arrived = _now() - timedelta(minutes=1)
    dovecot_server.append(user, "Support", _request(arrived), arrived)
    service = service_for(inbox="Support")

    first = service.run_cycle()
    assert (first.stored, first.sent) == (1, 1)
    [ack] = smtp_sink.wait_for(1)
    assert ack.rcpt_tos == ("dana@globex.example",)
    old = service.store.cursors("support")["Support"]

    admin.delete_folder("Support")
    admin.create_folder("Support")
    admin.logout()
    dovecot_server.append(user, "Support", _request(arrived), arrived)
    with capture_logs() as logs:
        second = service.run_cycle()

    new = service.store.cursors("support")["Support"]
    assert new.uidvalidity != old.uidvalidity
    assert (second.fetched, second.stored, second.duplicates) == (1, 0, 1)
    assert (second.decided, second.sent) == (0, 0)
    assert [e for e in logs if "uidvalidity changed" in e["event"]]
    assert len(smtp_sink.messages) == 1


# -- the source on its own ----------------------------------------------------------------


def _source(user: ImapUser, **overrides: Any) -> ImapSource:
    return plain_imap_source(
        user.host, user.port, user.username, user.password, **{"sent_folders": [], **overrides}
    )


def _cursor(batches: list[FolderBatch]) -> dict[str, FolderCursor]:
    last = batches[-1]
    return {last.folder: FolderCursor(last.uidvalidity, last.last_uid, last.highest_modseq)}


def _since() -> datetime:
    return datetime.now(UTC) - timedelta(days=14)


def test_condstore_poll_yields_only_changed_flags_then_nothing(
    dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """With a MODSEQ cursor only the changed message comes back, with its full flag set."""
    user = imap_user.username
    at = _now() - timedelta(hours=1)
    uids = dovecot_server.append_many(
        user,
        "INBOX",
        [
            (_mail(f"m{n}@x.example", "a@x.example", "b@y.example", "S", at), at, ())
            for n in range(3)
        ],
    )
    source = _source(imap_user)
    try:
        first = list(source.poll({}, _since()))
        cursor = _cursor(first)
        assert cursor["INBOX"].highest_modseq is not None
        assert list(source.poll(cursor, _since())) == []

        _set_keyword(dovecot_server, user, "INBOX", uids[1], "$ActionPlan")
        [batch] = source.poll(cursor, _since())
        assert batch.messages == ()
        assert batch.last_uid == uids[-1]
        assert batch.flag_updates == ((uids[1], ("$ActionPlan",)),)
        assert batch.highest_modseq is not None
        assert batch.highest_modseq > (cursor["INBOX"].highest_modseq or 0)

        assert list(source.poll(_cursor([batch]), _since())) == []
    finally:
        source.close()


def test_fallback_refresh_is_bounded_to_the_highest_uids(
    dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """Without CONDSTORE only the flag_refresh highest UIDs are looked at again."""
    user = imap_user.username
    at = _now() - timedelta(hours=1)
    uids = dovecot_server.append_many(
        user,
        "INBOX",
        [
            (_mail(f"f{n}@x.example", "a@x.example", "b@y.example", "S", at), at, ())
            for n in range(3)
        ],
    )
    source = _source(imap_user, use_condstore=False, flag_refresh=2)
    try:
        first = list(source.poll({}, _since()))
        assert first[-1].highest_modseq is None
        cursor = _cursor(first)
        assert list(source.poll(cursor, _since())) == []

        for uid in (uids[0], uids[2]):
            _set_keyword(dovecot_server, user, "INBOX", uid, "$WaitingOnClient")
        [batch] = source.poll(cursor, _since())
        assert batch.flag_updates == ((uids[2], ("$WaitingOnClient",)),)
        assert batch.highest_modseq is None
        assert list(source.poll(cursor, _since())) == []
    finally:
        source.close()
