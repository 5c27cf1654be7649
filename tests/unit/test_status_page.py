"""The status page's rows, marks, filters and charts, from evaluations at a frozen time."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, timedelta
from wsgiref.util import setup_testing_defaults
from zoneinfo import ZoneInfo

from sla_daemon.adapters.status_html import StatusPageRenderer
from sla_daemon.adapters.web import web_app
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import Account, Evaluation, Rules
from sla_daemon.metrics import DaemonMetrics
from sla_daemon.status_board import StatusBoard
from sla_daemon.status_page import StatusPage, Urgency, conversation_rows, status_page, urgency
from tests.clocks import ManualClock
from tests.unit.builders import NOW, client_mail, rules, team_reply

ZONE = ZoneInfo("Europe/Berlin")
INITECH = Account(
    name="Initech", policy="standard", owner="bob@acme.example", domains=("initech.example",)
)
PLAN = "Hello,\n\nAction plan: rotate the keys.\n"


def _rules() -> Rules:
    base = rules()
    return replace(base, accounts=(*base.accounts, INITECH))


def _evaluations() -> list[Evaluation]:
    """Five conversations evaluated at NOW, one of each kind the page tells apart.

    fine (Globex, 1m old), at risk (Initech, 45h, acked), late (Globex, 49h, acked),
    answered (Globex, plan sent) and paused (Initech, waiting on the client).
    """
    r = _rules()
    initech = "ops@initech.example"
    threads = {
        "fine": [client_mail("f1", 1 / 60, subject="Fine one")],
        "risk": [
            client_mail("r1", 45, subject="Risky one", sender=initech),
            team_reply("rr1", 44.9, "r1", to=initech),
        ],
        "late": [
            client_mail("l1", 49, subject="Late <b>one</b>"),
            team_reply("lr1", 48.9, "l1"),
        ],
        "done": [client_mail("d1", 10), team_reply("dp1", 5, "d1", body=PLAN)],
        "paused": [
            client_mail("p1", 20, sender=initech),
            team_reply("pr1", 19, "p1", keywords=("$WaitingOnClient",), to=initech),
        ],
    }
    return [evaluate(cid, msgs, r, {}, NOW) for cid, msgs in threads.items()]


def _page(**filters: str) -> StatusPage:
    return status_page(_evaluations(), _rules(), ZONE, NOW, evaluated_at=NOW, **filters)


def test_rows_are_the_open_conversations_next_deadline_first_paused_last() -> None:
    """By the next running clock's deadline, paused ones last; one with its plan is off.

    ``fine`` is unacknowledged: its acknowledge deadline (59 minutes away) comes before
    the at-risk one's action plan deadline (3 hours away).
    """
    rows = conversation_rows(_evaluations(), _rules(), ZONE, NOW)
    assert [(r.id, r.urgency) for r in rows] == [
        ("late", Urgency.LATE),
        ("fine", Urgency.ON_TRACK),
        ("risk", Urgency.AT_RISK),
        ("paused", Urgency.PAUSED),
    ]
    late, fine, risk, paused = rows
    assert late.clock == "action plan" and late.due_at == NOW - timedelta(hours=1)
    assert risk.due_at is not None and risk.warn_at == risk.due_at - timedelta(hours=24)
    assert fine.clock == "acknowledge" and fine.due_at is not None
    assert (paused.due_at, paused.due_local) == (None, "paused")
    assert (risk.account, risk.owner) == ("Initech", "bob@acme.example")
    assert "Cycle 1" in late.ledger and "BREACHED" in late.ledger


def test_a_conversation_evaluated_twice_is_listed_once() -> None:
    """A check-in repeats its account's latest status; the page lists that conversation once."""
    evaluations = _evaluations()
    rows = conversation_rows([*evaluations, evaluations[0]], _rules(), ZONE, NOW)
    assert [r.id for r in rows].count("fine") == 1


def test_urgency_follows_the_request_time_not_the_evaluation() -> None:
    """At risk from the warning time, late from the deadline; no deadline is paused."""
    due = NOW + timedelta(hours=2)
    warn = NOW + timedelta(hours=1)
    assert urgency(due, warn, NOW) is Urgency.ON_TRACK
    assert urgency(due, warn, warn) is Urgency.AT_RISK
    assert urgency(due, None, warn) is Urgency.ON_TRACK
    assert urgency(due, warn, due) is Urgency.LATE
    assert urgency(None, None, due) is Urgency.PAUSED


def test_filters_hide_other_accounts_and_owners_rows_and_charts() -> None:
    """``owner`` keeps that owner's rows and charts visible; an unknown account hides all."""
    page = _page(owner="bob@acme.example")
    assert {r.id for r in page.rows if r.visible} == {"risk", "paused"}
    assert [c.account for c in page.charts if c.visible] == ["Initech"]
    assert page.counts[Urgency.AT_RISK] == 1 and page.counts[Urgency.LATE] == 0
    assert not [r for r in _page(account="Removed Ltd").rows if r.visible]
    assert page.accounts == ("Globex", "Initech")
    assert page.owners == ("alice@acme.example", "bob@acme.example")


def test_each_account_gets_its_own_chart_of_the_last_30_days() -> None:
    """One chart per account, each counting only that account's cycles.

    Globex: ``fine`` is within target (nothing due yet), ``late`` missed its plan and
    ``done`` was acknowledged after 5 hours (target 1 hour).
    """
    charts = {c.account: c for c in _page().charts}
    assert (charts["Globex"].cycles, charts["Globex"].compliant) == (3, 1)
    assert charts["Globex"].share == "33%"
    assert (charts["Initech"].cycles, charts["Initech"].share) == (2, "100%")
    assert charts["Globex"].svg.startswith("<svg") and 'id="compliance-0"' in charts["Globex"].svg


def test_the_html_escapes_client_text_and_carries_what_the_script_needs() -> None:
    """A subject with markup is shown as text; rows carry deadline and warning times."""
    html, nonce = StatusPageRenderer().render(_page(account="Globex"))
    assert "Late &lt;b&gt;one&lt;/b&gt;" in html and "<b>one</b>" not in html
    assert f'<script nonce="{nonce}">' in html and f'<style nonce="{nonce}">' in html
    due = int((NOW - timedelta(hours=1)).timestamp() * 1000)
    assert re.search(rf'data-id="late"[^>]*data-due="{due}"', html)
    assert re.search(r'data-id="risk"[^>]*hidden>', html)
    assert '<option value="Globex" selected>' in html
    assert not re.search(r"(src|href)=\"https?:", html)
    assert html.count("<svg") == 2


def test_before_the_first_cycle_the_page_says_so() -> None:
    """Without evaluations the page is drawn, says the first cycle is pending, and has no rows."""
    html, _ = StatusPageRenderer().render(None)
    assert "has not finished its first cycle" in html
    assert "<details" not in html


def test_times_are_shown_in_the_given_zone() -> None:
    """Deadlines are printed in the display zone (Berlin is UTC+1 in November)."""
    rows = conversation_rows(_evaluations(), _rules(), ZONE, NOW)
    late = rows[0]
    assert late.due_at is not None
    assert late.due_local == late.due_at.astimezone(ZONE).strftime("%a %d %b %H:%M")
    assert late.due_at.astimezone(UTC).hour != late.due_at.astimezone(ZONE).hour


def _get(
    board: StatusBoard, query: str = "", method: str = "GET"
) -> tuple[str, dict[str, str], str]:
    environ: dict[str, object] = {"PATH_INFO": "/", "REQUEST_METHOD": method, "QUERY_STRING": query}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO()
    answer: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> None:
        answer.append((status, headers))

    renderer = StatusPageRenderer()
    app = web_app(DaemonMetrics(ManualClock(NOW)), lambda q: renderer.render(board.page(q)))
    body: Iterable[bytes] = app(environ, start_response)  # type: ignore[arg-type]
    return answer[0][0], dict(answer[0][1]), b"".join(body).decode()


def test_the_listener_serves_the_latest_evaluations_marked_at_request_time() -> None:
    """``/`` draws the board's latest cycle; marks move with the clock, not the cycle.

    The at-risk conversation shows as late once the clock passes its deadline, with no
    new evaluation; the query string filters; the policy allows nothing from elsewhere.
    """
    clock = ManualClock(NOW)
    board = StatusBoard(clock)
    status, _, body = _get(board)
    assert status == "200 OK" and "first cycle" in body
    board.observe(_evaluations(), _rules(), ZONE, NOW)
    status, headers, body = _get(board, "owner=bob%40acme.example")
    assert status == "200 OK"
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert re.search(r'data-id="risk"[^>]*data-urgency="at-risk"', body)
    assert re.search(r'data-id="late"[^>]*hidden>', body)
    clock.advance(timedelta(hours=4))
    assert re.search(r'data-id="risk"[^>]*data-urgency="late"', _get(board)[2])
    assert _get(board, method="POST")[0] == "405 Method Not Allowed"
