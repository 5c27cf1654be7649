"""The status page in a real headless Chromium, served by ``sla-daemon run`` on loopback.

Three client conversations are seeded in a real Dovecot (one on track, one at risk, one
late, in three accounts with two owners); the daemon reads them, sends through a real
SMTP sink and serves the page. Selenium drives the local chromedriver (never Selenium
Manager, which would download one). Screenshots of the desktop and phone layouts go to
the test's ``tmp_path`` and to ``test-output/`` at the repository root.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ImapUser
from tests.e2e.test_first_run import SLA_DAEMON, _mail, support_mailbox
from tests.e2e.test_first_run import _config as _config_of_first_run
from tests.servers.dovecot import DovecotServer, free_port
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT_LIMIT = 60.0
"""How long a condition is polled before the test fails (no timing assertion: only a page
that never gets there fails)."""
REPO_OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

ACCOUNTS = {
    # account: (client domain, owner, hours since the client wrote, team acked)
    "Globex": ("globex.example", "alice@acme.example", 1 / 60, False),
    "Initech": ("initech.example", "alice@acme.example", 45, True),
    "Umbrella": ("umbrella.example", "bob@acme.example", 49, True),
}
SUBJECTS = {
    "Globex": "Checkout page is slow",
    "Initech": "VPN drops <b>every</b> hour",
    "Umbrella": "Invoice export fails",
}


def _browser_parts() -> None:
    """Skip without Chromium on a workstation; fail in CI, where a skip would hide it."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        hint = f"missing {', '.join(missing)}: apt-get install chromium chromium-driver"
        if os.environ.get("CI") == "true":
            pytest.fail(hint)
        pytest.skip(hint)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, driven by the local chromedriver."""
    _browser_parts()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # An explicit driver path: Selenium Manager is never asked to find or fetch one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def _seed(server: DovecotServer, user: ImapUser, now: datetime) -> None:
    inbox, sent = [], []
    for account, (domain, _, hours, acked) in ACCOUNTS.items():
        client = f"client@{domain}"
        at = now - timedelta(hours=hours)
        opening = f"q-{account.lower()}@{domain}"
        subject = SUBJECTS[account]
        inbox.append((_mail(opening, client, "support@acme.example", subject, "Help.", at), at, ()))
        if acked:
            reply_at = at + timedelta(minutes=10)
            reply = _mail(
                f"r-{account.lower()}@acme.example",
                "Bob <bob@acme.example>",
                client,
                f"Re: {subject}",
                "Thanks, we are looking into it.",
                reply_at,
                parent=opening,
            )
            sent.append((reply, reply_at, ()))
    server.append_many(user.username, "INBOX", inbox)
    server.append_many(user.username, "Sent", sent)


def _config(tmp_path: Path, user: ImapUser, sink: SmtpSink, port: int) -> Path:
    """The first run's config with these accounts, a 2s poll and the page on ``port``."""
    overrides = {
        "accounts": [
            {"name": name, "domains": [domain], "owner": owner}
            for name, (domain, owner, _, _) in ACCOUNTS.items()
        ],
        "http": {"listen": f"127.0.0.1:{port}"},
    }
    mailbox = dataclasses.replace(support_mailbox(user), poll_interval="2s")
    return _config_of_first_run(tmp_path, user, sink, overrides=overrides, mailbox=mailbox)


def _until(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.2)


def _page_text(url: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def _screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    """A full-page PNG in ``tmp_path``, copied to ``test-output/``; the path is printed."""
    data = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )["data"]
    path = tmp_path / name
    path.write_bytes(base64.b64decode(data))
    REPO_OUTPUT.mkdir(exist_ok=True)
    shutil.copy(path, REPO_OUTPUT / name)
    print(f"screenshot: {path} (copy: {REPO_OUTPUT / name})")
    return path


def _visible_ids(driver: Any) -> list[str]:
    return [
        str(row.get_attribute("data-id"))
        for row in driver.find_elements("css selector", ".conv")
        if row.is_displayed()
    ]


def test_status_page_in_a_browser_counts_down_filters_and_explains(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    browser: Any,
) -> None:
    """The page a person opens on a running daemon, on a desktop and on a phone.

    Rows come most urgent first with marks (late, at risk, on track); a countdown ticks;
    the account and owner filters hide the other rows and charts and put themselves in
    the address; a click opens the ledger; each account has its chart; nothing is
    fetched from anywhere but the daemon; a 390 px wide phone screen needs no sideways
    scrolling.
    """
    from selenium.webdriver.support.ui import Select

    now = datetime.now(UTC).replace(microsecond=0)
    _seed(dovecot_server, imap_user, now)
    port = free_port()
    config = _config(tmp_path, imap_user, smtp_sink, port)
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [SLA_DAEMON, "--config", str(config), "run"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"E2E_IMAP_PASSWORD": imap_user.password, "PATH": "/usr/bin:/bin"},
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        # A cycle evaluates before it sends: the auto-ack shows from the next cycle on.
        _until(lambda: smtp_sink.messages, "the auto-ack to be sent")
        _until(
            lambda: (
                (text := _page_text(base)).count('class="conv"') == 3
                and 'clock">acknowledge<' not in text
            ),
            "three rows, the on-track one acknowledged",
        )
        browser.get(base)
        rows = browser.find_elements("css selector", ".conv")
        ids = [row.get_attribute("data-id") for row in rows]
        dues = [int(row.get_attribute("data-due")) for row in rows]
        assert dues == sorted(dues)
        marks = [row.get_attribute("data-urgency") for row in rows]
        assert marks == ["late", "at-risk", "on-track"]
        assert [row.find_element("css selector", ".mark").text for row in rows] == [
            "Late",
            "At risk",
            "On track",
        ]
        subjects = [row.find_element("css selector", ".subject").text for row in rows]
        assert subjects[1].startswith("VPN drops <b>every</b> hour")  # shown as text

        countdown = rows[1].find_element("css selector", ".countdown")
        first = countdown.text
        assert first.startswith("in ")
        _until(lambda: countdown.text != first, "the countdown to tick")
        _screenshot(browser, tmp_path, "status-page-desktop.png")

        Select(browser.find_element("id", "filter-account")).select_by_value("Initech")
        assert _visible_ids(browser) == [ids[1]]
        assert browser.current_url.endswith("/?account=Initech")
        charts = browser.find_elements("css selector", "figure.chart")
        assert [c.get_attribute("data-account") for c in charts if c.is_displayed()] == ["Initech"]
        Select(browser.find_element("id", "filter-account")).select_by_value("")
        Select(browser.find_element("id", "filter-owner")).select_by_value("alice@acme.example")
        assert _visible_ids(browser) == ids[1:]
        browser.get(base + "?owner=bob%40acme.example")
        assert _visible_ids(browser) == [ids[0]]
        browser.get(base)

        late = browser.find_elements("css selector", ".conv")[0]
        ledger = late.find_element("css selector", ".ledger")
        assert not ledger.is_displayed()
        late.find_element("css selector", "summary").click()
        assert ledger.is_displayed()
        assert "Cycle 1, opened by <q-umbrella@umbrella.example>" in ledger.text
        assert "BREACHED" in ledger.text

        figures = browser.find_elements("css selector", "figure.chart")
        assert sorted(f.get_attribute("data-account") for f in figures) == sorted(ACCOUNTS)
        assert all(f.find_elements("css selector", "svg circle") for f in figures)

        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        linked = browser.execute_script(
            "return Array.from(document.querySelectorAll('[src],[href]')).map(e => e.src || e.href)"
        )
        hosts = {urlsplit(url).hostname for url in [*resources, *linked, browser.current_url]}
        assert hosts == {"127.0.0.1"}

        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        browser.get(base)
        width, inner = browser.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert inner == 390 and width <= inner
        browser.find_elements("css selector", ".conv summary")[0].click()
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= inner
        _screenshot(browser, tmp_path, "status-page-phone.png")
    finally:
        daemon.terminate()
        daemon.wait(timeout=WAIT_LIMIT)
        log.close()
