"""The state database's schema: one entry per version, applied in order.

``PRAGMA user_version`` records how many have been applied. A migration is only ever
appended, never edited: databases in the field were created by the old ones.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema.
    """
    CREATE TABLE cursors (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder)
    );
    CREATE TABLE messages (
        message_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        arrived_at TEXT NOT NULL,
        facts TEXT NOT NULL,
        stored_at TEXT NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages (conversation_id, arrived_at);
    CREATE TABLE message_locations (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (mailbox, folder, uidvalidity, uid)
    );
    CREATE TABLE thread_links (
        message_id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL
    );
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        reason TEXT NOT NULL,
        raw BLOB NOT NULL,
        quarantined_at TEXT NOT NULL,
        UNIQUE (mailbox, folder, uidvalidity, uid)
    );
    CREATE TABLE outbox (
        key TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        recipients TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'suppressed', 'failed')),
        reason TEXT,
        message_id TEXT,
        payload BLOB,
        decided_at TEXT NOT NULL,
        sent_at TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT
    );
    CREATE INDEX outbox_by_conversation ON outbox (conversation_id);
    CREATE INDEX outbox_pending ON outbox (status) WHERE status = 'pending';
    """,
    # 2: the subject fallback's index. Each conversation is filed under the normalized
    # subject of each of its messages (generic subjects are not filed), with the addresses
    # of all its messages; its last arrival is MAX(messages.arrived_at). The store fills
    # both tables for messages stored before this migration.
    """
    CREATE TABLE conversation_subjects (
        subject TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        PRIMARY KEY (subject, conversation_id)
    );
    CREATE INDEX conversation_subjects_by_conversation
        ON conversation_subjects (conversation_id);
    CREATE TABLE conversation_participants (
        conversation_id TEXT NOT NULL,
        email TEXT NOT NULL,
        PRIMARY KEY (conversation_id, email)
    );
    """,
    # 3: keyword changes. Each cursor keeps the folder's HIGHESTMODSEQ (RFC 7162; NULL
    # without CONDSTORE), and each location the flags it was last seen with (a JSON
    # list; NULL for locations stored before this migration). A message's keywords are
    # the union over its locations, so a location is found by message too. The tables
    # are copied rather than altered, so that running this again cannot fail on a
    # column that is already there.
    """
    CREATE TABLE cursors_v3 (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        highest_modseq INTEGER,
        PRIMARY KEY (mailbox, folder)
    );
    INSERT INTO cursors_v3 (mailbox, folder, uidvalidity, last_uid, updated_at)
        SELECT mailbox, folder, uidvalidity, last_uid, updated_at FROM cursors;
    DROP TABLE cursors;
    ALTER TABLE cursors_v3 RENAME TO cursors;
    CREATE TABLE message_locations_v3 (
        mailbox TEXT NOT NULL,
        folder TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        keywords TEXT,
        PRIMARY KEY (mailbox, folder, uidvalidity, uid)
    );
    INSERT INTO message_locations_v3 (mailbox, folder, uidvalidity, uid, message_id)
        SELECT mailbox, folder, uidvalidity, uid, message_id FROM message_locations;
    DROP TABLE message_locations;
    ALTER TABLE message_locations_v3 RENAME TO message_locations;
    CREATE INDEX message_locations_by_message ON message_locations (message_id);
    """,
    # 4: delivery per recipient. Each notice to send has one row per recipient: pending
    # (due at next_attempt_at, or now when NULL), held (batching or quiet hours, until
    # next_attempt_at), sent (sent_at; via names the batch mail that carried it, NULL
    # for the notice itself) or failed (for good). last_code and last_error keep the
    # server's reply of the last failed attempt. Notices decided before this migration
    # get one row per recipient in their outbox state. Running this again changes nothing.
    """
    CREATE TABLE IF NOT EXISTS deliveries (
        key TEXT NOT NULL,
        recipient TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'held', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_code INTEGER,
        last_error TEXT,
        sent_at TEXT,
        via TEXT,
        PRIMARY KEY (key, recipient)
    );
    CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (state)
        WHERE state IN ('pending', 'held');
    CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (state) WHERE state = 'failed';
    INSERT OR IGNORE INTO deliveries (key, recipient, state, attempts, last_error, sent_at)
        SELECT outbox.key, json_each.value, outbox.status, outbox.attempts,
               outbox.last_error, outbox.sent_at
        FROM outbox, json_each(outbox.recipients)
        WHERE outbox.status IN ('pending', 'sent', 'failed');
    """,
    # 5: the per-sender auto-ack cap counts a kind's recent decisions at every decision.
    """
    CREATE INDEX IF NOT EXISTS outbox_by_kind_and_time ON outbox (kind, decided_at);
    """,
    # 6: the journal of changed conversations. A cycle re-evaluates only conversations
    # whose messages or notices changed (and those whose next check time came), so every
    # write that can change an evaluation notes the conversation here, whichever code
    # path makes it: a stored message, changed facts (keywords), a merge (both sides), a
    # decided, sent or failed notice. The service reads the journal, evaluates, and
    # deletes what it read. Notices of no conversation (digests, check-ins, briefings)
    # are not noted. Running this again changes nothing.
    """
    CREATE TABLE IF NOT EXISTS changed_conversations (
        seq INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL
    );
    CREATE TRIGGER IF NOT EXISTS message_added_changes AFTER INSERT ON messages
    BEGIN
        INSERT INTO changed_conversations (conversation_id) VALUES (NEW.conversation_id);
    END;
    CREATE TRIGGER IF NOT EXISTS message_updated_changes AFTER UPDATE ON messages
    BEGIN
        INSERT INTO changed_conversations (conversation_id) VALUES (NEW.conversation_id);
        INSERT INTO changed_conversations (conversation_id)
            SELECT OLD.conversation_id WHERE OLD.conversation_id != NEW.conversation_id;
    END;
    CREATE TRIGGER IF NOT EXISTS notice_added_changes AFTER INSERT ON outbox
        WHEN NEW.conversation_id != ''
    BEGIN
        INSERT INTO changed_conversations (conversation_id) VALUES (NEW.conversation_id);
    END;
    CREATE TRIGGER IF NOT EXISTS notice_updated_changes AFTER UPDATE ON outbox
        WHEN NEW.conversation_id != ''
    BEGIN
        INSERT INTO changed_conversations (conversation_id) VALUES (NEW.conversation_id);
    END;
    """,
    # 7: recorded batch mails. A batch mail (several team notices for one recipient) is
    # stored rendered, with its Message-ID, in the transaction that assigns its deliveries
    # to it: their via names it from then on, while they are still open. Every attempt,
    # after a retry or a restart, sends those bytes; state is pending until the server
    # accepts it (sent) or its deliveries fail for good (failed); attempts counts the
    # tries, for the backoff. No open delivery has a via before this migration (it was
    # set only when a batch was sent), so every one found later names a recorded batch.
    """
    CREATE TABLE IF NOT EXISTS batches (
        key TEXT PRIMARY KEY,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        payload BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS deliveries_by_batch ON deliveries (via)
        WHERE state IN ('pending', 'held');
    """,
    # 8: conversation summaries. Each conversation's last evaluation in brief: the
    # fingerprint of the rules it was made under, when, its next check time, its headline
    # (cycle, state, account, opened_at, breaches as a JSON list), its status (orjson,
    # without the ledger) and its account contacts (orjson). A start keeps a conversation
    # from its summary instead of evaluating it when the rules are the same, the journal
    # does not name it and its check time has not come. A summary is written in the
    # transaction that forgets the journal entries it covers, after the decisions of its
    # evaluation are recorded. Running this again changes nothing.
    """
    CREATE TABLE IF NOT EXISTS conversation_summaries (
        conversation_id TEXT PRIMARY KEY,
        rules TEXT NOT NULL,
        evaluated_at TEXT NOT NULL,
        check_at TEXT,
        cycle INTEGER NOT NULL,
        state TEXT NOT NULL,
        account TEXT,
        opened_at TEXT,
        breaches TEXT NOT NULL,
        status BLOB NOT NULL,
        contacts BLOB NOT NULL
    );
    """,
    # 9: the conversations, each with the arrival of its first message, in that order by
    # an index. The store lists its conversations oldest activity first at every start;
    # grouping every message for it took 0.14 s for 100,000 conversations, reading this
    # index 0.04 s. Triggers keep it, whichever code path writes messages: a stored
    # message adds its conversation or moves its first arrival earlier; a message moved
    # by a merge, re-dated or deleted has the conversations it touches counted again from
    # their messages (one gone once it has none). Running this again changes nothing.
    """
    CREATE TABLE IF NOT EXISTS conversations (
        conversation_id TEXT PRIMARY KEY,
        first_arrived_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS conversations_in_order
        ON conversations (first_arrived_at, conversation_id);
    INSERT OR IGNORE INTO conversations (conversation_id, first_arrived_at)
        SELECT conversation_id, MIN(arrived_at) FROM messages GROUP BY conversation_id;
    CREATE TRIGGER IF NOT EXISTS message_added_conversation AFTER INSERT ON messages
    BEGIN
        INSERT OR IGNORE INTO conversations (conversation_id, first_arrived_at)
            VALUES (NEW.conversation_id, NEW.arrived_at);
        UPDATE conversations SET first_arrived_at = NEW.arrived_at
            WHERE conversation_id = NEW.conversation_id AND first_arrived_at > NEW.arrived_at;
    END;
    CREATE TRIGGER IF NOT EXISTS message_moved_conversation
        AFTER UPDATE OF conversation_id, arrived_at ON messages
    BEGIN
        DELETE FROM conversations
            WHERE conversation_id IN (OLD.conversation_id, NEW.conversation_id);
        INSERT INTO conversations (conversation_id, first_arrived_at)
            SELECT conversation_id, MIN(arrived_at) FROM messages
            WHERE conversation_id IN (OLD.conversation_id, NEW.conversation_id)
            GROUP BY conversation_id;
    END;
    CREATE TRIGGER IF NOT EXISTS message_deleted_conversation AFTER DELETE ON messages
    BEGIN
        DELETE FROM conversations WHERE conversation_id = OLD.conversation_id;
        INSERT INTO conversations (conversation_id, first_arrived_at)
            SELECT conversation_id, MIN(arrived_at) FROM messages
            WHERE conversation_id = OLD.conversation_id GROUP BY conversation_id;
    END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
