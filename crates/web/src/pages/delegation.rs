//! Delegation: a person gives another person the right to read, or to read
//! and manage, their mail (issue 18). Interface used by the mailbox pages;
//! the delegation helper fills it in.

use super::PageError;
use super::access::MailboxAccess;
use crate::AppState;
use crate::session::WebSession;
use kuvert_domain::ids::MailboxMessageId;

/// The access a logged-in person has through the delegation `id`, looked up
/// now (never cached): a delegation that does not exist, is not to this
/// person, has been revoked or has expired answers [`PageError::NotFound`],
/// like a page that is not there.
pub async fn resolve(
    _state: &AppState,
    _session: WebSession,
    _id: &str,
) -> Result<MailboxAccess, PageError> {
    Err(PageError::NotFound)
}

/// Called by the mailbox pages after a delegate opened a message or
/// downloaded an attachment: the owner sees every such read.
pub async fn record_read(
    _state: &AppState,
    _access: &MailboxAccess,
    _message: &MailboxMessageId,
    _what: &str,
) -> Result<(), PageError> {
    Ok(())
}
