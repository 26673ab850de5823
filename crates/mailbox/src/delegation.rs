//! Delegation (decision 0019): a person gives another person the right to
//! read, or to read and manage, their mail, optionally until a date. The
//! mailbox operator keeps the rights, because it decides who reads a
//! mailbox; every check is a lookup in its database at the moment of the
//! request, so a revocation or an ended date applies to the delegate's
//! very next request. Grants, revocations and every read by a delegate are
//! in the mailbox's audit log, and the owner sees the reads.
//!
//! Limits, each checked before anything is stored:
//! - at most [`MAX_ACTIVE_DELEGATIONS`] active delegations per owner, and
//!   one per delegate;
//! - the delegate is a valid personal identity or coordination number
//!   (kuvert's parser), not the owner, and at least [`MIN_DELEGATE_AGE`];
//! - an end date is today or later (Swedish date, on kuvert's clock) and at
//!   most [`MAX_UNTIL_DAYS`] ahead; the right ends at the end of that day,
//!   Swedish time.

use crate::accept::Mailbox;
use kuvert_crypto::digest::random_token;
use kuvert_domain::identity::{IdentityError, PersonalIdentityNumber, RecipientId};
use kuvert_domain::ids::MailboxMessageId;
use kuvert_domain::swedish_time;
use kuvert_store::StoreError;
use kuvert_store::audit::AuditEntry;
use kuvert_store::delegations::{DelegateReadRow, DelegationRow, READ_ACTION};
use time::{Date, Duration, OffsetDateTime};

/// Active delegations one owner may have at once.
pub const MAX_ACTIVE_DELEGATIONS: i64 = 20;
/// A delegate is an adult: under-18s have no mailbox of their own either.
pub const MIN_DELEGATE_AGE: u32 = 18;
/// An end date is at most this many days ahead (about five years); a right
/// meant to last longer is given without an end date.
pub const MAX_UNTIL_DAYS: i64 = 1830;
/// The owner's page lists at most this many reads by delegates (the newest).
pub const LISTED_READS: i64 = 50;
/// A person's list of mailboxes delegated to them shows at most this many.
pub const LISTED_DELEGATED_TO: i64 = 50;
/// Longest identity number input read (the forms people write are 10 to 13
/// characters; anything longer is refused before it is parsed).
const MAX_IDENTITY_INPUT: usize = 32;
/// Random bytes in a delegation id (128 bits: not guessed, not counted).
const ID_BYTES: usize = 16;
/// Longest `what` kept in a read's audit entry.
const MAX_WHAT: usize = 32;

/// Why a delegation was refused or not found. Nothing is stored on any.
#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("the delegate's identity number is invalid: {0}")]
    InvalidIdentity(IdentityError),
    #[error("a person cannot delegate to themself")]
    ToSelf,
    #[error("the delegate must be at least {min} years old")]
    TooYoung { min: u32 },
    #[error("the rights must be read or manage")]
    InvalidRights,
    #[error("the end date is not a date (YYYY-MM-DD)")]
    InvalidDate,
    #[error("the end date has passed")]
    DateInPast,
    #[error("the end date is more than {max_days} days ahead")]
    DateTooFar { max_days: i64 },
    #[error("at most {limit} delegations may be active at once")]
    TooMany { limit: i64 },
    #[error("this person already has a delegation")]
    AlreadyDelegated,
    #[error("no such delegation")]
    NotFound,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for DelegationError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict => Self::AlreadyDelegated,
            StoreError::ListFull { limit } => Self::TooMany { limit },
            other => Self::Store(other),
        }
    }
}

/// What a delegation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    /// Read messages and download attachments.
    Read,
    /// Read, and also archive and move back to the inbox.
    Manage,
}

impl Rights {
    pub fn parse(text: &str) -> Result<Self, DelegationError> {
        match text {
            "read" => Ok(Self::Read),
            "manage" => Ok(Self::Manage),
            _ => Err(DelegationError::InvalidRights),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Manage => "manage",
        }
    }
}

/// A delegation's id: random, in the delegate's URLs (`/for/{id}/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationId(String);

impl DelegationId {
    fn new() -> Self {
        Self(random_token(ID_BYTES))
    }

    /// An id as kuvert makes them (22 base64url characters), or `None`:
    /// anything else cannot name a delegation and is not looked up.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = text.len() == 22
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A delegation as the pages show it.
#[derive(Debug, Clone)]
pub struct Delegation {
    pub id: DelegationId,
    pub owner: PersonalIdentityNumber,
    pub owner_name: String,
    pub delegate: PersonalIdentityNumber,
    /// Known once the delegate has used the right.
    pub delegate_name: Option<String>,
    pub rights: Rights,
    /// The last (Swedish) day of the right; none: until revoked.
    pub until: Option<Date>,
    pub created_at: OffsetDateTime,
}

/// What the owner asks for, as the form sent it.
#[derive(Debug, Clone, Copy)]
pub struct GrantRequest<'a> {
    /// The delegate's identity number, as written.
    pub delegate: &'a str,
    /// `read` or `manage`.
    pub rights: &'a str,
    /// `YYYY-MM-DD`, or empty for no end date.
    pub until: &'a str,
}

/// One read by a delegate, as the owner sees it.
#[derive(Debug, Clone)]
pub struct DelegateRead {
    pub at: OffsetDateTime,
    pub delegate: PersonalIdentityNumber,
    pub delegate_name: Option<String>,
    pub message: Option<MailboxMessageId>,
    /// What the delegate did: `message` (opened it), `attachment` (downloaded one).
    pub what: String,
}

fn person(canonical: &str) -> Result<PersonalIdentityNumber, DelegationError> {
    match RecipientId::parse_canonical(canonical) {
        Ok(RecipientId::Person(p)) => Ok(p),
        _ => Err(DelegationError::Store(StoreError::Corrupt(
            "delegation identity".into(),
        ))),
    }
}

fn from_row(row: DelegationRow) -> Result<Delegation, DelegationError> {
    let corrupt = |what: &str| DelegationError::Store(StoreError::Corrupt(what.to_owned()));
    let until = row
        .until_date
        .as_deref()
        .map(parse_date)
        .transpose()
        .map_err(|_| corrupt("delegation until_date"))?;
    Ok(Delegation {
        id: DelegationId::parse(&row.id).ok_or_else(|| corrupt("delegation id"))?,
        owner: person(&row.owner_id)?,
        owner_name: row.owner_name,
        delegate: person(&row.delegate_id)?,
        delegate_name: row.delegate_name,
        rights: Rights::parse(&row.rights).map_err(|_| corrupt("delegation rights"))?,
        until,
        created_at: row.created_at,
    })
}

fn parse_date(text: &str) -> Result<Date, DelegationError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).map_err(|_| DelegationError::InvalidDate)
}

fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// A grant that passed every rule.
struct CheckedGrant {
    delegate: PersonalIdentityNumber,
    rights: Rights,
    /// The last day and the instant it ends in Sweden.
    until: Option<(Date, OffsetDateTime)>,
}

/// The owner's request checked against every rule, before any lookup.
fn check_grant(
    owner: &PersonalIdentityNumber,
    request: &GrantRequest<'_>,
    now: OffsetDateTime,
) -> Result<CheckedGrant, DelegationError> {
    let today = swedish_time::date_at(now);
    if request.delegate.len() > MAX_IDENTITY_INPUT {
        return Err(DelegationError::InvalidIdentity(
            IdentityError::InvalidLength,
        ));
    }
    let delegate = PersonalIdentityNumber::parse(request.delegate, today)
        .map_err(DelegationError::InvalidIdentity)?;
    if delegate == *owner {
        return Err(DelegationError::ToSelf);
    }
    if !delegate.certainly_at_least(MIN_DELEGATE_AGE, today) {
        return Err(DelegationError::TooYoung {
            min: MIN_DELEGATE_AGE,
        });
    }
    let rights = Rights::parse(request.rights)?;
    let until = match request.until.trim() {
        "" => None,
        text => {
            let date = parse_date(text)?;
            if date < today {
                return Err(DelegationError::DateInPast);
            }
            if date > today + Duration::days(MAX_UNTIL_DAYS) {
                return Err(DelegationError::DateTooFar {
                    max_days: MAX_UNTIL_DAYS,
                });
            }
            let ends = swedish_time::end_of_day(date).ok_or(DelegationError::InvalidDate)?;
            Some((date, ends))
        }
    };
    Ok(CheckedGrant {
        delegate,
        rights,
        until,
    })
}

impl Mailbox {
    /// The owner gives `request.delegate` a right to their mail. Refused
    /// (nothing stored) for an invalid number, oneself, a minor, a past or
    /// too distant date, a full list or a delegate who has one already.
    pub async fn grant_delegation(
        &self,
        owner: &PersonalIdentityNumber,
        owner_name: &str,
        request: &GrantRequest<'_>,
    ) -> Result<Delegation, DelegationError> {
        let now = self.clock.now();
        let CheckedGrant {
            delegate,
            rights,
            until,
        } = check_grant(owner, request, now)?;
        let id = DelegationId::new();
        let until_date = until.map(|(date, _)| format_date(date));
        let row = DelegationRow {
            id: id.as_str().to_owned(),
            owner_id: owner.as_str().to_owned(),
            owner_name: owner_name.to_owned(),
            delegate_id: delegate.as_str().to_owned(),
            delegate_name: None,
            rights: rights.as_str().to_owned(),
            until_date: until_date.clone(),
            ends_at: until.map(|(_, ends)| ends),
            created_at: now,
            revoked_at: None,
        };
        let detail =
            serde_json::json!({ "rights": rights.as_str(), "until": until_date }).to_string();
        self.db
            .insert_delegation(
                &row,
                MAX_ACTIVE_DELEGATIONS,
                &AuditEntry {
                    tenant: None,
                    actor: "recipient",
                    action: "delegation.granted",
                    subject: id.as_str(),
                    detail: &detail,
                },
            )
            .await?;
        from_row(row)
    }

    /// The owner takes a right back. Another owner's delegation answers
    /// exactly like one that does not exist.
    pub async fn revoke_delegation(
        &self,
        owner: &PersonalIdentityNumber,
        id: &str,
    ) -> Result<(), DelegationError> {
        let id = DelegationId::parse(id).ok_or(DelegationError::NotFound)?;
        self.db
            .revoke_delegation(
                owner.as_str(),
                id.as_str(),
                self.clock.now(),
                &AuditEntry {
                    tenant: None,
                    actor: "recipient",
                    action: "delegation.revoked",
                    subject: id.as_str(),
                    detail: "{}",
                },
            )
            .await?;
        Ok(())
    }

    /// The owner's active delegations, oldest first.
    pub async fn delegations_by(
        &self,
        owner: &PersonalIdentityNumber,
    ) -> Result<Vec<Delegation>, DelegationError> {
        let rows = self
            .db
            .delegations_by_owner(owner.as_str(), self.clock.now())
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The mailboxes delegated to this person, active now, newest first (at
    /// most [`LISTED_DELEGATED_TO`]).
    pub async fn delegations_to(
        &self,
        delegate: &PersonalIdentityNumber,
    ) -> Result<Vec<Delegation>, DelegationError> {
        let rows = self
            .db
            .delegations_to(delegate.as_str(), self.clock.now(), LISTED_DELEGATED_TO)
            .await?;
        rows.into_iter().map(from_row).collect()
    }

    /// The delegation `id`, if it is to `delegate` and active at this
    /// moment; looked up now, never cached. The delegate's name as their
    /// e-ID gives it is kept for the owner's page.
    pub async fn delegation_for(
        &self,
        delegate: &PersonalIdentityNumber,
        delegate_name: &str,
        id: &str,
    ) -> Result<Option<Delegation>, DelegationError> {
        let Some(id) = DelegationId::parse(id) else {
            return Ok(None);
        };
        let Some(row) = self
            .db
            .active_delegation(id.as_str(), delegate.as_str(), self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        if row.delegate_name.as_deref() != Some(delegate_name) {
            self.db.set_delegate_name(&row.id, delegate_name).await?;
        }
        let mut delegation = from_row(row)?;
        delegation.delegate_name = Some(delegate_name.to_owned());
        Ok(Some(delegation))
    }

    /// An audit entry for a delegate's read of the owner's mail: `what` is
    /// `message` (opened) or `attachment` (downloaded).
    pub async fn record_delegate_read(
        &self,
        delegation: &DelegationId,
        message: &MailboxMessageId,
        what: &str,
    ) -> Result<(), DelegationError> {
        let what: String = what.chars().take(MAX_WHAT).collect();
        let detail =
            serde_json::json!({ "message": message.to_string(), "what": what }).to_string();
        self.db
            .record_delegate_read(
                self.clock.now(),
                &AuditEntry {
                    tenant: None,
                    actor: "delegate",
                    action: READ_ACTION,
                    subject: delegation.as_str(),
                    detail: &detail,
                },
            )
            .await?;
        Ok(())
    }

    /// The newest reads by delegates of the owner's mail (at most
    /// [`LISTED_READS`]), newest first, revoked delegations' included.
    pub async fn delegate_reads(
        &self,
        owner: &PersonalIdentityNumber,
    ) -> Result<Vec<DelegateRead>, DelegationError> {
        let rows = self.db.delegate_reads(owner.as_str(), LISTED_READS).await?;
        rows.into_iter().map(read_from_row).collect()
    }
}

fn read_from_row(row: DelegateReadRow) -> Result<DelegateRead, DelegationError> {
    #[derive(serde::Deserialize)]
    struct Detail {
        message: Option<String>,
        what: Option<String>,
    }
    let detail: Detail = serde_json::from_str(&row.detail)
        .map_err(|_| DelegationError::Store(StoreError::Corrupt("delegate read".into())))?;
    Ok(DelegateRead {
        at: row.at,
        delegate: person(&row.delegate_id)?,
        delegate_name: row.delegate_name,
        message: detail
            .message
            .as_deref()
            .and_then(|m| MailboxMessageId::parse(m).ok()),
        what: detail.what.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    const ANNA: &str = "198001012387";
    const BERTIL: &str = "197505053178";

    fn pin(text: &str) -> PersonalIdentityNumber {
        PersonalIdentityNumber::parse(text, time::macros::date!(2026 - 12 - 01)).unwrap()
    }

    fn grant<'a>(delegate: &'a str, until: &'a str) -> GrantRequest<'a> {
        GrantRequest {
            delegate,
            rights: "read",
            until,
        }
    }

    #[test]
    fn each_rule_refuses_its_case() {
        let now = datetime!(2026-12-01 12:00 UTC);
        let anna = pin(ANNA);
        let check = |r: GrantRequest<'_>| check_grant(&anna, &r, now);
        assert!(matches!(
            check(grant("19800101-2388", "")),
            Err(DelegationError::InvalidIdentity(_))
        ));
        assert!(matches!(
            check(grant(&"1".repeat(40), "")),
            Err(DelegationError::InvalidIdentity(_))
        ));
        assert!(matches!(
            check(grant("19800101-2387", "")),
            Err(DelegationError::ToSelf)
        ));
        assert!(matches!(
            check(grant("201006156440", "")),
            Err(DelegationError::TooYoung { min: 18 })
        ));
        assert!(matches!(
            check(grant(BERTIL, "2026-11-30")),
            Err(DelegationError::DateInPast)
        ));
        assert!(matches!(
            check(grant(BERTIL, "30/11/2026")),
            Err(DelegationError::InvalidDate)
        ));
        assert!(matches!(
            check(grant(BERTIL, "2040-01-01")),
            Err(DelegationError::DateTooFar { .. })
        ));
        let rights = GrantRequest {
            rights: "admin",
            ..grant(BERTIL, "")
        };
        assert!(matches!(check(rights), Err(DelegationError::InvalidRights)));
    }

    #[test]
    fn today_is_a_valid_end_date_and_ends_at_swedish_midnight() {
        // 23:30 UTC on 1 December is already 2 December in Sweden.
        let now = datetime!(2026-12-01 23:30 UTC);
        let checked = check_grant(&pin(ANNA), &grant(BERTIL, "2026-12-02"), now).unwrap();
        assert_eq!(
            checked.until.map(|(_, ends)| ends),
            Some(datetime!(2026-12-02 23:00 UTC))
        );
        assert!(matches!(
            check_grant(&pin(ANNA), &grant(BERTIL, "2026-12-01"), now),
            Err(DelegationError::DateInPast)
        ));
    }

    #[test]
    fn ids_are_random_and_only_kuverts_form_parses() {
        let (a, b) = (DelegationId::new(), DelegationId::new());
        assert_ne!(a, b);
        assert_eq!(DelegationId::parse(a.as_str()), Some(a));
        assert_eq!(DelegationId::parse("1"), None);
        assert_eq!(DelegationId::parse("../../../../etc/passwd"), None);
    }
}
