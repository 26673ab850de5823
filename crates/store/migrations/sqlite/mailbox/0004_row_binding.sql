-- Encryption at rest binds each row (decision 0012). `format` says how a
-- row's blobs are encrypted: 1 for rows written before (data key wrapped
-- under the KEK alone, subject and content bound to the message id only),
-- 2 for rows whose data key and ciphertexts are bound to their plain
-- columns. Existing rows are 1; the mailbox upgrades them to 2 at start-up
-- (it needs the KEK, which SQL does not have) and reads nothing else.
--
-- `sender_name` goes: it was plain text, and what a recipient sees as the
-- sender now comes from the encrypted summary. A legacy row keeps the name
-- in its encrypted content, where the upgrade takes it from.
ALTER TABLE mailbox_messages ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
ALTER TABLE mailbox_messages DROP COLUMN sender_name;
