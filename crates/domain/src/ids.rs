//! Identifier newtypes. Ids chosen by kuvert are UUIDv7 (time-ordered, so
//! indexes stay append-mostly); ids chosen by people (tenant slugs, operator
//! ids) are short lowercase slugs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an id could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a valid UUID")]
    NotUuid,
    #[error("a slug is 2 to 64 characters of a-z, 0-9 and '-', starting with a letter")]
    NotSlug,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
            pub fn parse(s: &str) -> Result<Self, IdError> {
                uuid::Uuid::parse_str(s).map(Self).map_err(|_| IdError::NotUuid)
            }
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// One delivery: one recipient, one or more messages, delivered together.
    DeliveryId
);
uuid_id!(
    /// A bulk submission of many deliveries.
    BatchId
);
uuid_id!(
    /// One stored message in a mailbox.
    MailboxMessageId
);

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, example = "sundsvall")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = (2..=64).contains(&s.len())
                    && s.starts_with(|c: char| c.is_ascii_lowercase())
                    && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if ok { Ok(Self(s.to_owned())) } else { Err(IdError::NotSlug) }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A tenant: one sending organisation or förmedlare on a shared installation.
    TenantId
);
slug_id!(
    /// A mailbox operator (brevlådeoperatör).
    OperatorId
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slugs_are_checked() {
        assert!(TenantId::parse("sundsvall-kommun").is_ok());
        for bad in ["", "a", "Sundsvall", "1abc", "a b", "a_b", &"a".repeat(65)] {
            assert_eq!(TenantId::parse(bad), Err(IdError::NotSlug), "{bad:?}");
        }
    }

    #[test]
    fn uuid_ids_round_trip() {
        let id = DeliveryId::new();
        assert_eq!(DeliveryId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(DeliveryId::parse("nope"), Err(IdError::NotUuid));
    }
}
