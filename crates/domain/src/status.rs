//! A delivery's status: the one definition the store, the relay and the API
//! use. The database's `CHECK` on `deliveries.status` is the one copy that
//! cannot be generated from here; a test in `kuvert-store` compares it with
//! [`DeliveryStatus::ALL`].
//!
//! Adding a status is a compile error wherever it matters: every `match` on
//! [`DeliveryStatus`] is exhaustive (no wildcard arms), and [`StatusCounts`]
//! has one field per status.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares the enum and its `ALL` from one list of variants, so `ALL`
/// cannot miss one.
macro_rules! with_all {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Every status, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];
        }
    };
}

with_all! {
    /// A delivery's status.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum DeliveryStatus {
        Accepted,
        Delivered,
        Paper,
        NotDelivered,
        Failed,
    }
}

/// A status name that is not one of [`DeliveryStatus::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown delivery status {0:?}")]
pub struct UnknownStatus(pub String);

impl DeliveryStatus {
    /// The name stored in the database and used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Delivered => "delivered",
            Self::Paper => "paper",
            Self::NotDelivered => "not_delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }

    /// Whether the delivery has come as far as it will.
    pub const fn is_final(self) -> bool {
        match self {
            Self::Accepted => false,
            Self::Delivered | Self::Paper | Self::NotDelivered | Self::Failed => true,
        }
    }
}

impl std::fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many deliveries are in each status, one member per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusCounts {
    pub accepted: i64,
    pub delivered: i64,
    pub paper: i64,
    pub not_delivered: i64,
    pub failed: i64,
}

impl StatusCounts {
    pub fn get(&self, status: DeliveryStatus) -> i64 {
        match status {
            DeliveryStatus::Accepted => self.accepted,
            DeliveryStatus::Delivered => self.delivered,
            DeliveryStatus::Paper => self.paper,
            DeliveryStatus::NotDelivered => self.not_delivered,
            DeliveryStatus::Failed => self.failed,
        }
    }

    fn get_mut(&mut self, status: DeliveryStatus) -> &mut i64 {
        match status {
            DeliveryStatus::Accepted => &mut self.accepted,
            DeliveryStatus::Delivered => &mut self.delivered,
            DeliveryStatus::Paper => &mut self.paper,
            DeliveryStatus::NotDelivered => &mut self.not_delivered,
            DeliveryStatus::Failed => &mut self.failed,
        }
    }

    pub fn add(&mut self, status: DeliveryStatus, n: i64) {
        *self.get_mut(status) += n;
    }

    /// How many are not final yet.
    pub fn open(&self) -> i64 {
        DeliveryStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .map(|s| self.get(s))
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_serde_name_is_the_stored_name_and_parses_back() {
        for status in DeliveryStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(status.as_str().to_owned())
            );
            assert_eq!(DeliveryStatus::parse(status.as_str()), Ok(status));
            assert_eq!(
                serde_json::from_value::<DeliveryStatus>(status.as_str().into()).unwrap(),
                status
            );
        }
        assert!(DeliveryStatus::parse("lost").is_err());
    }

    #[test]
    fn counts_serialise_with_one_member_per_status() {
        let mut counts = StatusCounts::default();
        for (n, status) in DeliveryStatus::ALL.into_iter().enumerate() {
            counts.add(status, i64::try_from(n).unwrap() + 1);
        }
        let json = serde_json::to_value(counts).unwrap();
        let object = json.as_object().unwrap();
        assert_eq!(object.len(), DeliveryStatus::ALL.len());
        for status in DeliveryStatus::ALL {
            assert_eq!(object[status.as_str()], counts.get(status));
        }
        assert_eq!(counts.open(), 1);
    }
}
