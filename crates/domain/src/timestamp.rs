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
        self.with_rfc3339(str::to_owned)
    }

    /// Hands the RFC 3339 text to `use_text` without allocating it where it fits the fixed
    /// form (years 0 to 9999). Every queued event serialises two timestamps, and `format!`
    /// with seven padded fields cost the ingress more than the rest of the envelope's fixed
    /// fields together.
    fn with_rfc3339<R>(self, use_text: impl FnOnce(&str) -> R) -> R {
        let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
        else {
            return use_text(&self.0.to_string());
        };
        let Ok(year) = u32::try_from(at.year()) else {
            return use_text(&Self::formatted(at));
        };
        let mut text = *b"0000-00-00T00:00:00.000Z";
        for (start, width, value) in [
            (0, 4, year),
            (5, 2, u32::from(u8::from(at.month()))),
            (8, 2, u32::from(at.day())),
            (11, 2, u32::from(at.hour())),
            (14, 2, u32::from(at.minute())),
            (17, 2, u32::from(at.second())),
            (20, 3, u32::from(at.millisecond())),
        ] {
            let mut rest = value;
            for slot in text[start..start + width].iter_mut().rev() {
                // `rest % 10` is below 10, so the digit is ASCII.
                *slot = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            if rest != 0 {
                return use_text(&Self::formatted(at));
            }
        }
        match std::str::from_utf8(&text) {
            Ok(text) => use_text(text),
            Err(_) => use_text(&Self::formatted(at)),
        }
    }

    /// The general form, for years outside 0 to 9999.
    fn formatted(at: OffsetDateTime) -> String {
        let (year, month, day) = (at.year(), u8::from(at.month()), at.day());
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            at.hour(),
            at.minute(),
            at.second(),
            at.millisecond()
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_rfc3339(|text| f.write_str(text))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_rfc3339(|text| serializer.serialize_str(text))
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

    /// The fixed form writes its digits by hand: it must say what the general form says,
    /// across the years, the months' ends, leap days and the edges of each field.
    #[test]
    fn the_fixed_form_matches_the_general_form() {
        let general = |at: Timestamp| {
            let nanos = i128::from(at.millis()) * 1_000_000;
            Timestamp::formatted(OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap())
        };
        let mut millis: Vec<i64> = vec![
            0,
            -1,
            1,
            999,
            951_782_400_000,     // 2000-02-29
            1_795_263_599_999,   // 2026-11-21T09:59:59.999
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            -62_167_219_200_000, // 0000-01-01T00:00:00.000
        ];
        // A spread over the fixed form's whole range, by an odd step.
        let mut at = -62_167_219_200_000_i64;
        while at < 253_402_300_799_999 {
            millis.push(at);
            at += 3_155_760_000_007;
        }
        for value in millis {
            let at = Timestamp::from_millis(value);
            assert_eq!(at.to_rfc3339(), general(at), "{value}");
            assert_eq!(at.to_string(), general(at), "{value}");
            assert_eq!(
                serde_json::to_string(&at).unwrap(),
                format!("\"{}\"", general(at))
            );
        }
        // Before year 0 the general form is used as it stands.
        let early = Timestamp::from_millis(-62_167_219_200_001);
        assert_eq!(early.to_rfc3339(), general(early));
        assert!(early.to_rfc3339().starts_with('-'));
    }

    #[test]
    fn rejects_garbage_with_the_value() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("\"yesterday\""));
    }
}
