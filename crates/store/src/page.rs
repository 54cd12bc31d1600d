//! Cursor pagination. A cursor is an opaque token naming the last item of a page; the next
//! page starts strictly after it, so items inserted meanwhile are neither skipped nor repeated
//! (new items sort after existing ones, because ids are time-ordered).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A decoded cursor: the sort key of the last item already returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) millis: i64,
    pub(crate) id: uuid::Uuid,
}

/// A cursor string that this server did not produce.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cursor is not one this server returned")]
pub struct InvalidCursor;

impl Cursor {
    #[must_use]
    pub(crate) fn new(millis: i64, id: uuid::Uuid) -> Self {
        Self { millis, id }
    }

    #[must_use]
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.millis, self.id.simple()))
    }

    pub fn parse(text: &str) -> Result<Self, InvalidCursor> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let raw = String::from_utf8(raw).map_err(|_| InvalidCursor)?;
        let (millis, id) = raw.split_once(':').ok_or(InvalidCursor)?;
        Ok(Self {
            millis: millis.parse().map_err(|_| InvalidCursor)?,
            id: uuid::Uuid::parse_str(id).map_err(|_| InvalidCursor)?,
        })
    }
}

/// Clamps a requested page size to 1..=500 (default 50).
#[must_use]
pub(crate) fn page_size(limit: Option<u64>) -> u64 {
    limit.unwrap_or(50).clamp(1, 500)
}

/// Splits a fetched `limit + 1` rows into a page and the cursor of its last item.
pub(crate) fn finish<R, T>(
    mut rows: Vec<R>,
    limit: u64,
    key: impl Fn(&R) -> Cursor,
    convert: impl Fn(R) -> crate::Result<T>,
) -> crate::Result<Page<T>> {
    let more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = if more {
        rows.last().map(|row| key(row).encode())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(convert)
        .collect::<crate::Result<Vec<T>>>()?;
    Ok(Page { items, next_cursor })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor::new(1_700_000_000_123, uuid::Uuid::now_v7());
        assert_eq!(Cursor::parse(&cursor.encode()).unwrap(), cursor);
        assert!(Cursor::parse("not-a-cursor!").is_err());
        assert!(Cursor::parse(&URL_SAFE_NO_PAD.encode("12:zz")).is_err());
    }
}
