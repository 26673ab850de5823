//! Whose mailbox a page shows, and who is looking. Every mailbox page
//! (inbox, message, attachment, archive) takes a [`MailboxAccess`] and
//! calls the mailbox functions the recipient API calls, with
//! [`MailboxAccess::owner`]: a person's own mail at `/inbox`,
//! `/messages/…`; mail they were given the right to read (delegation,
//! [`super::delegation`]) at `/for/{delegation}/inbox`, `/for/{delegation}/messages/…`,
//! a clearly separate view. The delegation is looked up again on every
//! request, so a revocation applies to the delegate's very next one.

use crate::session::WebSession;
use kuvert_domain::identity::RecipientId;

/// The right to see one mailbox in this request.
#[derive(Debug, Clone)]
pub struct MailboxAccess {
    /// The person logged in.
    pub session: WebSession,
    /// The mailbox shown: the session's own, or a delegating owner's.
    pub owner: RecipientId,
    /// `Some` when the person reads someone else's mail by delegation.
    pub delegated: Option<Delegated>,
}

/// What a delegation gives, as it stands in this request.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// The delegation's id (in the URL of the delegate's view).
    pub id: String,
    /// The owner's name as shown ("Post till Anna Andersson").
    pub owner_name: String,
    /// Read and manage (archive), not only read.
    pub manage: bool,
}

impl MailboxAccess {
    /// A person's own mailbox.
    pub fn own(session: WebSession) -> Self {
        let owner = session.recipient();
        Self {
            session,
            owner,
            delegated: None,
        }
    }

    /// Whether this access may change the mailbox (archive, unarchive).
    pub fn may_manage(&self) -> bool {
        self.delegated.as_ref().is_none_or(|d| d.manage)
    }

    /// The path prefix of this view's links: `""` for one's own mail,
    /// `/for/{delegation}` for a delegate's.
    pub fn prefix(&self) -> String {
        match &self.delegated {
            None => String::new(),
            Some(d) => format!("/for/{}", d.id),
        }
    }
}
