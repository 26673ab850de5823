-- The web inbox (issue 18) pages by cursor in the order it shows: unread
-- first, then newest first, the id breaking ties. This index serves that
-- keyset query (`Db::mailbox_page_after`) for one recipient and folder
-- without a sort, however many messages the mailbox holds.
CREATE INDEX mailbox_messages_unread_first ON mailbox_messages(
    recipient_id, (archived_at IS NULL), (read_at IS NULL), delivered_at, id
) WHERE deleted_at IS NULL;

-- Messages of the same official matter (ärende) are linked on the message
-- page. The matter is encrypted with the message, so the mailbox writes a
-- keyed blind index at acceptance: HMAC (a key derived from the KEK) of
-- [recipient, sender, matter id], hex. NULL for a message without a matter
-- and for rows stored before this migration (they are not linked).
ALTER TABLE mailbox_messages ADD COLUMN matter_tag TEXT;
CREATE INDEX mailbox_messages_matter ON mailbox_messages(recipient_id, matter_tag)
    WHERE matter_tag IS NOT NULL;

-- The inbox's sender filter lists the senders of a recipient's mail, each
-- with its newest message (`Db::mailbox_senders`): a walk of this index,
-- no sort.
CREATE INDEX mailbox_messages_sender ON mailbox_messages(recipient_id, sender_id, delivered_at)
    WHERE deleted_at IS NULL;
