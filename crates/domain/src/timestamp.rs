//! Instants as Unix milliseconds. The database stores them as integers so that SQLite and
//! PostgreSQL compare and index them identically; on the wire they are RFC 3339 strings.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time, UTC, millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::schema::date_time()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// A string that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected an RFC 3339 timestamp such as 2026-11-21T10:00:00Z, got {0:?}")]
pub struct TimestampError(String);

impl Timestamp {
    #[must_use]
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    #[must_use]
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds.saturating_mul(1000))
    }

    #[must_use]
    pub const fn millis(self) -> i64 {
        self.0
    }

    #[must_use]
    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// The wall clock. Only IO code calls this; pure code takes a `Timestamp` argument.
    #[must_use]
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    #[must_use]
    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    #[must_use]
    pub fn minus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// Parses RFC 3339 (`2026-11-21T10:00:00Z`, `2021-08-12T16:31:36-06:00`).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map_err(|_| TimestampError(text.chars().take(64).collect()))?;
        let millis = parsed.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(millis)
            .map(Self)
            .map_err(|_| TimestampError(text.chars().take(64).collect()))
    }

    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T10:00:00.000Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(at) => {
                let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
                format!(
                    "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                    at.hour(),
                    at.minute(),
                    at.second(),
                    at.millisecond()
                )
            }
            Err(_) => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339() {
        let at = Timestamp::parse_rfc3339("2026-11-21T10:00:00.123Z").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-21T10:00:00.123Z");
        assert_eq!(at.millis() % 1000, 123);
    }

    #[test]
    fn honours_offsets() {
        let a = Timestamp::parse_rfc3339("2021-08-12T16:31:36-06:00").unwrap();
        let b = Timestamp::parse_rfc3339("2021-08-12T22:31:36Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""));
    }
}
