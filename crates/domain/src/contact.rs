//! A recipient's notification contacts: an email address and a mobile
//! phone number, each parsed here (a value that exists is valid). The
//! mailbox keeps them for notifications ("you have new mail", never the
//! content); what is accepted is documented in `docs/settings.md` (limits).

use serde::{Deserialize, Serialize};

/// The longest email address accepted (RFC 5321's path limit less `<>`).
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest local part (before `@`), RFC 5321.
pub const MAX_EMAIL_LOCAL_CHARS: usize = 64;
/// The longest domain label, RFC 1035.
pub const MAX_DOMAIN_LABEL_CHARS: usize = 63;
/// The most characters a phone number may be typed with (spaces and
/// dashes included), checked before anything else is looked at.
pub const MAX_PHONE_INPUT_CHARS: usize = 32;
/// E.164: at most 15 digits after `+`.
pub const MAX_E164_DIGITS: usize = 15;
/// And at least this many (a country code and a subscriber number).
pub const MIN_E164_DIGITS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("the email address is longer than {MAX_EMAIL_CHARS} characters")]
    EmailTooLong,
    #[error("the email address is not of the form name@domain.tld")]
    EmailMalformed,
    #[error("the phone number is longer than {MAX_PHONE_INPUT_CHARS} characters")]
    PhoneTooLong,
    #[error(
        "the phone number is neither in international form (+46701234567) nor a Swedish mobile number (070-123 45 67)"
    )]
    PhoneMalformed,
}

/// An email address: `local@domain`, ASCII, the local part a dot-atom
/// (RFC 5322) of at most 64 characters, the domain at least two labels
/// of letters, digits and inner hyphens (an international domain in its
/// `xn--` form), the last one not numeric; at most 254 characters. The
/// domain is kept in lower case, the local part as typed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, ContactError> {
        let text = text.trim();
        if text.chars().count() > MAX_EMAIL_CHARS {
            return Err(ContactError::EmailTooLong);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(ContactError::EmailMalformed)?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
        let local_ok = !local.is_empty()
            && local.len() <= MAX_EMAIL_LOCAL_CHARS
            && local
                .split('.')
                .all(|atom| !atom.is_empty() && atom.chars().all(atext));
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.len() <= MAX_DOMAIN_LABEL_CHARS
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let top_ok = labels
            .last()
            .is_some_and(|top| !top.chars().all(|c| c.is_ascii_digit()));
        if !local_ok || labels.len() < 2 || !labels.iter().all(label_ok) || !top_ok {
            return Err(ContactError::EmailMalformed);
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<EmailAddress> for String {
    fn from(value: EmailAddress) -> Self {
        value.0
    }
}

/// Personal data: `Debug` shows only the domain.
impl std::fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let domain = self.0.rsplit_once('@').map_or("", |(_, d)| d);
        write!(f, "EmailAddress(…@{domain})")
    }
}

/// A phone number for SMS, in E.164 (`+46701234567`). Accepted as typed:
/// E.164 (`+` and 8–15 digits, the first not 0), the same with `00` for
/// `+`, or a Swedish mobile number in national form (`07X` and seven more
/// digits: 070, 072, 073, 076 or 079); spaces, dashes and parentheses are
/// ignored. A Swedish number (+46) must be a mobile number, since only
/// those receive SMS.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(text: &str) -> Result<Self, ContactError> {
        let text = text.trim();
        if text.chars().count() > MAX_PHONE_INPUT_CHARS {
            return Err(ContactError::PhoneTooLong);
        }
        let compact: String = text
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '\u{a0}'))
            .collect();
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest.to_owned()
        } else if let Some(rest) = compact.strip_prefix('0') {
            // National form: only a Swedish mobile number.
            if rest.len() != 9 {
                return Err(ContactError::PhoneMalformed);
            }
            format!("46{rest}")
        } else {
            return Err(ContactError::PhoneMalformed);
        };
        let well_formed = digits.chars().all(|c| c.is_ascii_digit())
            && (MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&digits.len())
            && !digits.starts_with('0');
        if !well_formed {
            return Err(ContactError::PhoneMalformed);
        }
        if let Some(national) = digits.strip_prefix("46") {
            let mobile = national.len() == 9
                && national.starts_with('7')
                && matches!(
                    national.as_bytes().get(1),
                    Some(b'0' | b'2' | b'3' | b'6' | b'9')
                );
            if !mobile {
                return Err(ContactError::PhoneMalformed);
            }
        }
        Ok(Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ContactError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

/// Personal data: `Debug` shows the last two digits only.
impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(2)..];
        write!(f, "PhoneNumber(+…{tail})")
    }
}

/// What a recipient asked to be notified at; either may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationContacts {
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
}

impl NotificationContacts {
    pub fn is_empty(&self) -> bool {
        self.email.is_none() && self.phone.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn email_addresses_are_parsed_and_the_domain_lowered() {
        let ok = EmailAddress::parse(" Anna.Andersson+post@Exempel.SE ").unwrap();
        assert_eq!(ok.as_str(), "Anna.Andersson+post@exempel.se");
        assert!(EmailAddress::parse("a@xn--rksmrgs-5wao1o.se").is_ok());
        for bad in [
            "",
            "anna",
            "anna@",
            "@exempel.se",
            "anna@exempel",
            "anna@@exempel.se",
            "anna..a@exempel.se",
            ".anna@exempel.se",
            "anna@-exempel.se",
            "anna@exempel-.se",
            "anna@exempel..se",
            "anna@exempel.123",
            "an na@exempel.se",
            "anna@exem_pel.se",
            "åsa@exempel.se",
            "anna@exempel.se<script>",
            "\"anna\"@exempel.se",
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(ContactError::EmailMalformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn email_lengths_have_their_limits() {
        let local = "a".repeat(64);
        assert!(EmailAddress::parse(&format!("{local}@exempel.se")).is_ok());
        assert_eq!(
            EmailAddress::parse(&format!("a{local}@exempel.se")),
            Err(ContactError::EmailMalformed)
        );
        // 254 characters exactly, then one more.
        let label = "b".repeat(63);
        let domain = format!("{label}.{label}.{label}.{}.se", "c".repeat(54));
        let at_limit = format!("{local}@{domain}");
        assert_eq!(at_limit.len(), 64 + 1 + 63 * 3 + 3 + 54 + 3);
        let at_limit = &at_limit[..at_limit.len() - (at_limit.len() - 254)];
        assert_eq!(at_limit.len(), 254);
        assert!(EmailAddress::parse(at_limit).is_ok(), "{at_limit}");
        let over = format!("x{at_limit}");
        assert_eq!(EmailAddress::parse(&over), Err(ContactError::EmailTooLong));
        assert_eq!(
            EmailAddress::parse(&"a".repeat(100_000)),
            Err(ContactError::EmailTooLong)
        );
    }

    #[test]
    fn phone_numbers_become_e164() {
        for (typed, e164) in [
            ("+46701234567", "+46701234567"),
            ("+46 70 123 45 67", "+46701234567"),
            ("070-123 45 67", "+46701234567"),
            ("0701234567", "+46701234567"),
            ("0046 73 123 45 67", "+46731234567"),
            ("079 123 45 67", "+46791234567"),
            ("+358 40 123 4567", "+358401234567"),
            ("+1 (202) 555-0143", "+12025550143"),
        ] {
            assert_eq!(PhoneNumber::parse(typed).unwrap().as_str(), e164, "{typed}");
        }
        for bad in [
            "",
            "701234567",
            "08-123 456 78",
            "+4681234567",
            "0711234567",
            "070123456",
            "07012345678",
            "+0701234567",
            "+1234567",
            "+1234567890123456",
            "+46 70 12a 45 67",
            "tel:+46701234567",
        ] {
            assert_eq!(
                PhoneNumber::parse(bad),
                Err(ContactError::PhoneMalformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            PhoneNumber::parse(&"1".repeat(33)),
            Err(ContactError::PhoneTooLong)
        );
    }

    #[test]
    fn debug_output_hides_the_contact() {
        let email = EmailAddress::parse("anna@exempel.se").unwrap();
        let phone = PhoneNumber::parse("0701234567").unwrap();
        let shown = format!("{email:?} {phone:?}");
        assert!(
            !shown.contains("anna") && !shown.contains("70123"),
            "{shown}"
        );
    }
}
