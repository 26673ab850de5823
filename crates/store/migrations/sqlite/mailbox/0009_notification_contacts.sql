-- A recipient's notification contacts (email, mobile number), kept by the
-- mailbox operator for "you have new mail" notices. Encrypted like the
-- messages: a data key per row wrapped under the KEK, bound to the
-- recipient id (kuvert_mailbox::contacts), so the file holds no address.
CREATE TABLE notification_contacts (
    recipient_id TEXT PRIMARY KEY,
    wrapped_key  BLOB NOT NULL,
    contacts     BLOB NOT NULL,   -- encrypted JSON NotificationContacts
    updated_at   TEXT NOT NULL
);
