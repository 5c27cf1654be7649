"""Real automated mail from the shared corpora, received as client mail, gets no auto-ack.

Every message of ``autoreply/EXPECTED_AUTOREPLY.json`` and every bounce, delay warning,
feedback report and auto-reply under ``bounces/`` is APPENDed to a Dovecot INBOX, with a
config whose ``default_account`` makes every outside sender a client, an
``auto_ack_max_age`` of ten years and a per-sender cap far above the corpus size, so that
only the automated-mail rules can keep the daemon quiet. One ``run --once`` must send
nothing at all.

Left out, because a person wrote them and they rightly get an auto-ack: the 19 cases
that EXPECTED_AUTOREPLY.json labels not automated and not list traffic (13 talon
replies, 4 spams, groupwise_03, discourse's missing_message_id), and sisimai's two "not a
bounce" negatives (``is-not-bounce-01/02``). The one labelled human list post stays in:
list traffic is never auto-acknowledged. Non-mail files (README, LICENSE) are skipped
and sisimai's mbox files are split into their messages.

Measured on the corpora as they stand (printed by the test): 1,120 messages offered,
all accepted by Dovecot and fetched, 830 stored (290 share a Message-ID with one stored,
mostly the CRLF and CR-only copies of sisimai's files), none quarantined, 0 decisions,
0 mails at the sink; not due an auto-ack: bounce 784, auto_reply 18, feedback_report 15,
bulk 6, list 4, challenge_response 3. Two of the list ones are fml list-manager notices
("you are not a member", "Loop Alert") known by their X-MLServer / List-Subscribe
headers.
"""

from __future__ import annotations

import json
import mailbox
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.configs import Replace, write_config
from tests.conftest import ImapUser
from tests.e2e.test_first_run import _cli, support_mailbox
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.corpus]

HUMAN_NEGATIVES = {
    "bounces/sisimai/maildir/not/is-not-bounce-01.eml",
    "bounces/sisimai/maildir/not/is-not-bounce-02.eml",
}
NOT_MAIL = {"README.md", "LICENSE"}


def labelled_human(corpora_dir: Path) -> set[str]:
    """Files EXPECTED_AUTOREPLY.json labels as written by a person, list posts excepted."""
    data = json.loads((corpora_dir / "autoreply" / "EXPECTED_AUTOREPLY.json").read_text())
    return {
        case["file"]
        for case in data["cases"]
        if not case["expected_auto"] and not case["list_traffic"]
    }


def corpus_messages(corpora_dir: Path) -> Iterator[tuple[str, bytes]]:
    """(label, raw bytes) of every automated message this test offers the daemon."""
    data = json.loads((corpora_dir / "autoreply" / "EXPECTED_AUTOREPLY.json").read_text())
    excluded = labelled_human(corpora_dir) | HUMAN_NEGATIVES
    files = {case["file"] for case in data["cases"]}
    files |= {
        str(path.relative_to(corpora_dir))
        for path in (corpora_dir / "bounces").rglob("*")
        if path.is_file() and path.name not in NOT_MAIL
    }
    for name in sorted(files - excluded):
        path = corpora_dir / name
        raw = path.read_bytes()
        if not raw:
            continue  # sisimai's mailbox/size-0 is an empty file, no message
        if "/mailbox/" in name:  # sisimai's mbox files
            for number, message in enumerate(mailbox.mbox(path)):
                yield f"{name}#{number}", message.as_bytes()
        elif raw.startswith(b"From "):
            # One message saved with its mbox envelope line, which a delivery agent
            # would not keep; its body quotes the original unescaped, so no mbox split.
            yield name, re.split(rb"\r\n|\r|\n", raw, maxsplit=1)[1]
        else:
            yield name, raw


def test_automated_corpus_as_client_mail_gets_no_auto_ack(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    corpora_dir: Path,
) -> None:
    """Zero mails reach the sink; every message is read and each skip has a reason."""
    now = datetime.now(UTC).replace(microsecond=0)
    arrived = now - timedelta(minutes=5)
    offered = list(corpus_messages(corpora_dir))
    refused: list[str] = []
    client = dovecot_server.connect(imap_user.username)
    try:
        client.select_folder("INBOX", readonly=True)
        for label, raw in offered:
            try:
                client.append("INBOX", raw, msg_time=arrived)
            except Exception as exc:  # a refusal is reported, not fatal: others go on
                refused.append(f"{label}: {exc}")
    finally:
        client.logout()
    overrides = {
        "policies": Replace(
            {"standard": {"acknowledge": {"within": "30d"}, "action_plan": {"within": "60d"}}}
        ),
        "accounts": [
            {"name": "Everyone", "domains": ["everyone.invalid"], "owner": "alice@acme.example"}
        ],
        "default_account": "Everyone",
        "ingest": {"auto_ack_max_age": "3650d"},
        # The daemon's default digest window; the cap far above the corpus size.
        "notices": {"digest_window": "5m", "auto_ack_per_sender_per_day": 100000},
    }
    config = write_config(
        tmp_path / "config.yaml",
        mailboxes=[support_mailbox(imap_user)],
        sink=smtp_sink,
        overrides=overrides,
    )

    result = _cli(config, imap_user, "run", "--once")

    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    [done] = [e for e in events if e["event"] == "cycle.done"]
    reasons: dict[str, Any] = done["suppressed_by_reason"]
    print(
        f"offered {len(offered)}, refused by Dovecot {len(refused)}, fetched {done['fetched']}, "
        f"stored {done['stored']}, duplicates {done['duplicates']}, "
        f"quarantined {done['quarantined']}, decided {done['decided']}, "
        f"suppressed_by_reason {reasons}"
    )
    assert refused == []
    assert done["fetched"] == len(offered)
    assert done["stored"] > 800
    acked = [f"{m.message['To']}: {m.message['Subject']}" for m in smtp_sink.messages]
    assert acked == []
    # With every outside sender a client, each stored message either would have been
    # auto-acked or is counted under the reason it was not: here all are counted.
    assert done["decided"] == 0
    assert sum(reasons.values()) == done["stored"]
