//! Reading roster files: a customer's roster (CSV with a header row, or JSON lines: one JSON
//! object per line) becomes one [`Row`] per data row, each either an owner's facts or a
//! per-row [`RowError`]; problems with the file as a whole are a [`RowsError`].
//!
//! Streaming and constant-memory: [`RowReader`] holds at most one row (capped at
//! [`MAX_ROW_BYTES`]) plus a fixed read buffer, whatever the size of the file. A row larger
//! than the cap is reported as a row error and skipped without ever being held whole: CSV
//! records are framed here (a small state machine that follows the `csv` crate's quoting
//! rules, so a quoted field may span lines) before each record is parsed on its own.
//!
//! What counts as a row: blank lines (empty or only spaces and tabs) are skipped and not
//! counted, in both formats; every other record or line is one numbered row, even one that
//! turns out to be an error. Email validity is not checked here: provisioning records an
//! issue for a bad address.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::iter::FusedIterator;

use domain::{OwnerFacts, OwnerStatus};
use serde_json::Value;

/// The fields a roster column (or JSON key) can give. All but `name` are [`OwnerFacts`]
/// fields; `name` is a full name, split into first and last name when those are not given.
pub const CANONICAL_FIELDS: &[&str] = &[
    "id",
    "email",
    "first_name",
    "last_name",
    "name",
    "avatar_url",
    "status",
    "member_type",
    "employee_ids",
    "title",
    "department",
    "location",
];

/// The largest row (a CSV record without its line ending, or a JSON line) read: a larger row
/// is a row error ("row is larger than 1 MiB"), skipped without being held in memory.
pub const MAX_ROW_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How long a value from the file may be when quoted back in a message.
const MAX_QUOTED_CHARS: usize = 64;

/// How many columns a "no `id` column" message lists.
const MAX_LISTED_COLUMNS: usize = 20;

/// How many ignored JSON keys [`RowReader::ignored_columns`] collects, and how long each may be.
const MAX_IGNORED_KEYS: usize = 50;
const MAX_IGNORED_KEY_BYTES: usize = 200;

/// A roster file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line (blank lines allowed).
    JsonLines,
}

impl Format {
    /// From a file name (`.csv`, `.jsonl`, `.ndjson`, `.json`; case-insensitive) or, failing
    /// that, the first non-whitespace byte of the content after any UTF-8 BOM (`{` → JSON
    /// lines, else CSV).
    #[must_use]
    pub fn detect(file_name: Option<&str>, head: &[u8]) -> Format {
        let by_name =
            file_name
                .and_then(|name| name.rsplit_once('.'))
                .and_then(
                    |(_, extension)| match extension.to_ascii_lowercase().as_str() {
                        "csv" => Some(Format::Csv),
                        "jsonl" | "ndjson" | "json" => Some(Format::JsonLines),
                        _ => None,
                    },
                );
        if let Some(format) = by_name {
            return format;
        }
        let head = head.strip_prefix(BOM).unwrap_or(head);
        match head.iter().find(|byte| !byte.is_ascii_whitespace()) {
            Some(b'{') => Format::JsonLines,
            _ => Format::Csv,
        }
    }

    /// From an HTTP content type (parameters such as `charset` ignored, case-insensitive):
    /// `text/csv` → CSV; `application/x-ndjson`, `application/jsonl`,
    /// `application/x-jsonlines` → JSON lines; anything else → `None`.
    #[must_use]
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split_once(';')
            .map_or(content_type, |(essence, _)| essence)
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/csv" => Some(Format::Csv),
            "application/x-ndjson" | "application/jsonl" | "application/x-jsonlines" => {
                Some(Format::JsonLines)
            }
            _ => None,
        }
    }
}

/// A canonical field (see [`CANONICAL_FIELDS`], same order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Email,
    FirstName,
    LastName,
    Name,
    AvatarUrl,
    Status,
    MemberType,
    EmployeeIds,
    Title,
    Department,
    Location,
}

const FIELD_COUNT: usize = 12;

impl Field {
    const ALL: [Field; FIELD_COUNT] = [
        Field::Id,
        Field::Email,
        Field::FirstName,
        Field::LastName,
        Field::Name,
        Field::AvatarUrl,
        Field::Status,
        Field::MemberType,
        Field::EmployeeIds,
        Field::Title,
        Field::Department,
        Field::Location,
    ];

    const fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Email => "email",
            Field::FirstName => "first_name",
            Field::LastName => "last_name",
            Field::Name => "name",
            Field::AvatarUrl => "avatar_url",
            Field::Status => "status",
            Field::MemberType => "member_type",
            Field::EmployeeIds => "employee_ids",
            Field::Title => "title",
            Field::Department => "department",
            Field::Location => "location",
        }
    }

    /// The field named exactly `name` (callers lowercase and trim first).
    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// How a column name is compared: trimmed, case-insensitive.
fn column_key(column: &str) -> String {
    column.trim().to_lowercase()
}

/// Which file column gives which canonical field (`--map column=field`). Columns named like a
/// canonical field (trimmed, case-insensitive) need no mapping; a mapped column gives its
/// mapped field even when its own name is a canonical field's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMap {
    /// By [`column_key`]: the column as given (trimmed) and its field.
    columns: BTreeMap<String, (String, Field)>,
}

impl ColumnMap {
    /// From `column=field` pairs (split at the last `=`, so a column name may contain `=`;
    /// both sides trimmed, the field case-insensitive). The error names the bad pair: no `=`,
    /// an empty column, an unknown field, a column mapped twice, or two columns mapped to one
    /// field.
    pub fn parse<S: AsRef<str>>(pairs: &[S]) -> Result<ColumnMap, RowsError> {
        let mut columns: BTreeMap<String, (String, Field)> = BTreeMap::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let bad = |reason: String| RowsError::BadMapping {
                pair: clip(pair),
                reason,
            };
            let Some((column, field)) = pair.rsplit_once('=') else {
                return Err(bad("expected column=field".to_owned()));
            };
            let column = column.trim();
            if column.is_empty() {
                return Err(bad("the column name is empty".to_owned()));
            }
            let field_name = field.trim();
            let Some(field) = Field::from_name(&field_name.to_ascii_lowercase()) else {
                return Err(bad(format!(
                    "unknown field `{}`; the fields are {}",
                    clip(field_name),
                    CANONICAL_FIELDS.join(", ")
                )));
            };
            let key = column_key(column);
            if let Some((earlier, _)) = columns.get(&key) {
                return Err(bad(format!("column `{}` is mapped twice", clip(earlier))));
            }
            if let Some((earlier, _)) = columns.values().find(|(_, mapped)| *mapped == field) {
                return Err(bad(format!(
                    "columns `{}` and `{}` are both mapped to `{}`",
                    clip(earlier),
                    clip(column),
                    field.name()
                )));
            }
            columns.insert(key, (column.to_owned(), field));
        }
        Ok(ColumnMap { columns })
    }

    /// The field a column (or JSON key) gives, if any.
    fn field_for(&self, column: &str) -> Option<Field> {
        let key = column_key(column);
        match self.columns.get(&key) {
            Some((_, field)) => Some(*field),
            None => Field::from_name(&key),
        }
    }
}

/// One data row of a roster file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based data row number: the header and blank lines are not counted.
    pub number: u64,
    /// The owner the row describes, or why the row was rejected.
    pub result: Result<OwnerFacts, RowError>,
}

/// Why one row was rejected; the rest of the file is still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// The row's id, when it had a readable one (valid UTF-8, not blank, no U+0000).
    pub external_id: Option<String>,
    /// One line, for the import's summary; quotes at most a short prefix of any value.
    pub reason: String,
}

impl RowError {
    fn new(external_id: Option<String>, reason: impl Into<String>) -> Self {
        RowError {
            external_id,
            reason: reason.into(),
        }
    }
}

/// A problem with the roster file as a whole (or with the column mapping): nothing is read.
/// Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowsError {
    /// The CSV header is not UTF-8.
    #[error("the file is not UTF-8: save it as UTF-8")]
    NotUtf8,
    /// No header (CSV) or no line (JSON lines): the file is empty or only blank lines.
    #[error("the file is empty")]
    Empty,
    /// The CSV header is larger than [`MAX_ROW_BYTES`].
    #[error("the header row is larger than 1 MiB")]
    HeaderTooLarge,
    /// No header column gives `id`.
    #[error(
        "no column gives `id` (the columns are {columns}): name the id column `id` or map it with column=id"
    )]
    NoIdColumn {
        /// The header's columns, listed for the message.
        columns: String,
    },
    /// A column named in the mapping is not in the header.
    #[error("the mapped column `{column}` is not in the header")]
    MappedColumnMissing { column: String },
    /// Two header columns give the same field.
    #[error("columns `{first}` and `{second}` both give `{field}`")]
    DuplicateField {
        field: String,
        first: String,
        second: String,
    },
    /// A `column=field` pair that cannot be used.
    #[error("bad column mapping `{pair}`: {reason}")]
    BadMapping { pair: String, reason: String },
    /// Reading the file failed.
    #[error("could not read the file: {0}")]
    Read(String),
}

impl RowsError {
    fn read(error: &io::Error) -> Self {
        RowsError::Read(error.to_string())
    }
}

/// Reads a roster file row by row; see the module documentation.
///
/// The iterator yields every row, errors included, and ends at the end of the file or at the
/// first read error. **A read error ends the rows early**: check [`RowReader::read_error`]
/// once the iterator ends before treating the file as complete (a full-roster import must
/// not take owners missing from a truncated file for leavers).
pub struct RowReader<R> {
    framer: Framer<R>,
    format: Format,
    map: ColumnMap,
    /// CSV: the field each header column gives.
    columns: Vec<Option<Field>>,
    /// CSV: the header column giving `id`.
    id_column: usize,
    ignored: Vec<String>,
    /// The current record (without its line ending).
    buf: Vec<u8>,
    /// JSON lines: the first line, read by `new` to tell an empty file, not yet yielded.
    pending: Option<Framed>,
    number: u64,
    done: bool,
    error: Option<RowsError>,
}

impl<R> fmt::Debug for RowReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowReader")
            .field("format", &self.format)
            .field("rows_read", &self.number)
            .field("ignored_columns", &self.ignored)
            .field("done", &self.done)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<R: Read> RowReader<R> {
    /// Reads the header (CSV) — or, for JSON lines, just far enough to tell the file is not
    /// empty — and checks the mapping against it. A UTF-8 BOM at the start is skipped.
    ///
    /// Fails when the file is empty (or only blank lines), the CSV header is not UTF-8 ("the
    /// file is not UTF-8: save it as UTF-8") or larger than [`MAX_ROW_BYTES`], a mapped column
    /// is missing from the header, two columns give one field, or no column gives `id` (the
    /// message names the columns found). Header names are trimmed and matched
    /// case-insensitively. For JSON lines the mapping applies to each object's keys.
    pub fn new(reader: R, format: Format, map: &ColumnMap) -> Result<Self, RowsError> {
        let framing = match format {
            Format::Csv => Framing::Csv,
            Format::JsonLines => Framing::Lines,
        };
        let mut framer = Framer::new(reader, framing);
        let mut buf = Vec::new();
        let first = loop {
            match framer
                .next(&mut buf)
                .map_err(|error| RowsError::read(&error))?
            {
                Framed::Eof => return Err(RowsError::Empty),
                Framed::Record if is_blank(&buf) => {}
                framed => break framed,
            }
        };
        let mut rows = RowReader {
            framer,
            format,
            map: map.clone(),
            columns: Vec::new(),
            id_column: 0,
            ignored: Vec::new(),
            buf,
            pending: None,
            number: 0,
            done: false,
            error: None,
        };
        match format {
            Format::JsonLines => rows.pending = Some(first),
            Format::Csv => {
                if first == Framed::TooLarge {
                    return Err(RowsError::HeaderTooLarge);
                }
                rows.read_header()?;
            }
        }
        Ok(rows)
    }

    /// Header columns that give no field (ignored), for the summary; blank column names are
    /// left out. For JSON lines: the keys giving no field seen so far (the first 50 distinct
    /// ones of at most 200 bytes), complete once the rows are read.
    pub fn ignored_columns(&self) -> &[String] {
        &self.ignored
    }

    /// The read error that ended the rows early, if any. Check it once the iterator ends.
    pub fn read_error(&self) -> Option<&RowsError> {
        self.error.as_ref()
    }

    /// Resolves the CSV header in `self.buf` against the mapping.
    fn read_header(&mut self) -> Result<(), RowsError> {
        let record = parse_csv_record(&self.buf).ok_or(RowsError::NotUtf8)?;
        let mut names = Vec::with_capacity(record.len());
        for name in &record {
            let name = std::str::from_utf8(name).map_err(|_| RowsError::NotUtf8)?;
            names.push(name.trim().to_owned());
        }
        let keys: Vec<String> = names.iter().map(|name| column_key(name)).collect();
        for (key, (column, _)) in &self.map.columns {
            if !keys.contains(key) {
                return Err(RowsError::MappedColumnMissing {
                    column: clip(column),
                });
            }
        }
        let columns: Vec<Option<Field>> =
            names.iter().map(|name| self.map.field_for(name)).collect();
        let mut givers: [Option<usize>; FIELD_COUNT] = [None; FIELD_COUNT];
        for (index, field) in columns.iter().enumerate() {
            let Some(field) = field else { continue };
            if let Some(earlier) = givers[field.index()] {
                return Err(RowsError::DuplicateField {
                    field: field.name().to_owned(),
                    first: clip(names.get(earlier).map_or("", String::as_str)),
                    second: clip(names.get(index).map_or("", String::as_str)),
                });
            }
            givers[field.index()] = Some(index);
        }
        let Some(id_column) = givers[Field::Id.index()] else {
            return Err(RowsError::NoIdColumn {
                columns: list_columns(&names),
            });
        };
        self.ignored = names
            .iter()
            .zip(&columns)
            .filter(|(name, field)| field.is_none() && !name.is_empty())
            .map(|(name, _)| name.clone())
            .collect();
        self.columns = columns;
        self.id_column = id_column;
        Ok(())
    }

    /// One CSV data record (in `bytes`) as owner facts.
    fn csv_row(&self, bytes: &[u8]) -> Result<OwnerFacts, RowError> {
        let Some(record) = parse_csv_record(bytes) else {
            return Err(RowError::new(None, "row could not be read as CSV"));
        };
        let external_id = record
            .get(self.id_column)
            .and_then(|id| std::str::from_utf8(id).ok())
            .and_then(readable_id);
        if record.len() != self.columns.len() {
            return Err(RowError::new(
                external_id,
                format!(
                    "row has {} fields, the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            ));
        }
        if std::str::from_utf8(bytes).is_err() {
            return Err(RowError::new(
                external_id,
                "row is not valid UTF-8: save the file as UTF-8",
            ));
        }
        let mut values = Values::default();
        for (value, field) in record.iter().zip(&self.columns) {
            let Some(field) = field else { continue };
            let text = std::str::from_utf8(value).unwrap_or_default();
            values
                .set_text(*field, text)
                .map_err(|reason| RowError::new(external_id.clone(), reason))?;
        }
        values.into_facts(external_id)
    }

    /// One JSON line (in `bytes`) as owner facts; notes keys giving no field in `ignored`.
    fn json_row(
        map: &ColumnMap,
        ignored: &mut Vec<String>,
        bytes: &[u8],
    ) -> Result<OwnerFacts, RowError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| RowError::new(None, "row is not valid UTF-8: save the file as UTF-8"))?;
        let value: Value = serde_json::from_str(text)
            .map_err(|error| RowError::new(None, format!("line is not valid JSON: {error}")))?;
        let Value::Object(object) = value else {
            return Err(RowError::new(
                None,
                format!("line is {}, not a JSON object", json_kind(&value)),
            ));
        };
        let mut givers: [Option<&str>; FIELD_COUNT] = [None; FIELD_COUNT];
        let mut given: Vec<(Field, &Value)> = Vec::new();
        for (key, value) in &object {
            match map.field_for(key) {
                Some(field) => {
                    if let Some(earlier) = givers[field.index()] {
                        let external_id = object_id(map, &object);
                        return Err(RowError::new(
                            external_id,
                            format!(
                                "keys `{}` and `{}` both give `{}`",
                                clip(earlier),
                                clip(key),
                                field.name()
                            ),
                        ));
                    }
                    givers[field.index()] = Some(key);
                    given.push((field, value));
                }
                None => note_ignored(ignored, key),
            }
        }
        let external_id = given
            .iter()
            .find(|(field, _)| *field == Field::Id)
            .and_then(|(_, value)| json_scalar(value))
            .and_then(|id| readable_id(&id));
        let mut values = Values::default();
        for (field, value) in given {
            values
                .set_json(field, value)
                .map_err(|reason| RowError::new(external_id.clone(), reason))?;
        }
        values.into_facts(external_id)
    }
}

impl<R: Read> Iterator for RowReader<R> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        loop {
            let framed = match self.pending.take() {
                Some(framed) => framed,
                None if self.done => return None,
                None => match self.framer.next(&mut self.buf) {
                    Ok(framed) => framed,
                    Err(error) => {
                        self.done = true;
                        self.error = Some(RowsError::read(&error));
                        return None;
                    }
                },
            };
            let result = match framed {
                Framed::Eof => {
                    self.done = true;
                    return None;
                }
                Framed::TooLarge => Err(RowError::new(None, "row is larger than 1 MiB")),
                Framed::Record if is_blank(&self.buf) => continue,
                Framed::Record => {
                    let bytes = std::mem::take(&mut self.buf);
                    let result = match self.format {
                        Format::Csv => self.csv_row(&bytes),
                        Format::JsonLines => Self::json_row(&self.map, &mut self.ignored, &bytes),
                    };
                    self.buf = bytes;
                    result
                }
            };
            self.number += 1;
            return Some(Row {
                number: self.number,
                result,
            });
        }
    }
}

impl<R: Read> FusedIterator for RowReader<R> {}

/// A row's values by field, on their way to [`OwnerFacts`].
#[derive(Default)]
struct Values {
    /// Trimmed, non-blank text by [`Field::index`] (`employee_ids` is kept apart).
    text: [Option<String>; FIELD_COUNT],
    employee_ids: Vec<String>,
}

impl Values {
    /// Sets a field from text: trimmed, blank → none; `employee_ids` split on `;`.
    fn set_text(&mut self, field: Field, text: &str) -> Result<(), String> {
        check_nul(field, text)?;
        if field == Field::EmployeeIds {
            self.employee_ids = text
                .split(';')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
        } else {
            let text = text.trim();
            self.text[field.index()] = (!text.is_empty()).then(|| text.to_owned());
        }
        Ok(())
    }

    /// Sets a field from a JSON value: text or a number (`null` → none); `employee_ids` may
    /// also be a list of text or numbers (nulls and blanks dropped).
    fn set_json(&mut self, field: Field, value: &Value) -> Result<(), String> {
        match value {
            Value::Null => Ok(()),
            Value::String(text) => self.set_text(field, text),
            Value::Number(number) => self.set_text(field, &number.to_string()),
            Value::Array(items) if field == Field::EmployeeIds => {
                let mut ids = Vec::with_capacity(items.len());
                for item in items {
                    let id = match item {
                        Value::Null => continue,
                        Value::String(text) => text.clone(),
                        Value::Number(number) => number.to_string(),
                        other => {
                            return Err(format!(
                                "`employee_ids` must be a list of text or numbers, not of {}",
                                json_kind_plural(other)
                            ));
                        }
                    };
                    check_nul(field, &id)?;
                    let id = id.trim();
                    if !id.is_empty() {
                        ids.push(id.to_owned());
                    }
                }
                self.employee_ids = ids;
                Ok(())
            }
            other => Err(format!(
                "`{}` must be text or a number, not {}",
                field.name(),
                json_kind(other)
            )),
        }
    }

    fn take(&mut self, field: Field) -> Option<String> {
        self.text[field.index()].take()
    }

    fn into_facts(mut self, external_id: Option<String>) -> Result<OwnerFacts, RowError> {
        let Some(id) = self.take(Field::Id) else {
            return Err(RowError::new(None, "`id` is missing or blank"));
        };
        let status = match self.take(Field::Status) {
            None => None,
            Some(text) => Some(parse_status(&text).ok_or_else(|| {
                RowError::new(
                    external_id.clone(),
                    format!(
                        "unknown status `{}`; expected active, enabled, inactive, disabled, \
                         suspended, terminated, left, deleted or archived",
                        clip(&text)
                    ),
                )
            })?),
        };
        let mut first_name = self.take(Field::FirstName);
        let mut last_name = self.take(Field::LastName);
        if let Some(name) = self.take(Field::Name) {
            let (first, last) = split_name(&name);
            first_name = first_name.or(first);
            last_name = last_name.or(last);
        }
        Ok(OwnerFacts {
            external_id: id,
            email: self.take(Field::Email),
            first_name,
            last_name,
            avatar_url: self.take(Field::AvatarUrl),
            status,
            member_type: self.take(Field::MemberType),
            employee_ids: std::mem::take(&mut self.employee_ids),
            title: self.take(Field::Title),
            department: self.take(Field::Department),
            location: self.take(Field::Location),
        })
    }
}

fn check_nul(field: Field, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        Err(format!(
            "`{}` contains a NUL character (U+0000)",
            field.name()
        ))
    } else {
        Ok(())
    }
}

/// A status as customers write it (case-insensitive).
fn parse_status(text: &str) -> Option<OwnerStatus> {
    const SPELLINGS: &[(&str, OwnerStatus)] = &[
        ("active", OwnerStatus::Active),
        ("enabled", OwnerStatus::Active),
        ("inactive", OwnerStatus::Inactive),
        ("disabled", OwnerStatus::Inactive),
        ("suspended", OwnerStatus::Inactive),
        ("terminated", OwnerStatus::Terminated),
        ("left", OwnerStatus::Terminated),
        ("deleted", OwnerStatus::Deleted),
        ("archived", OwnerStatus::Deleted),
    ];
    SPELLINGS
        .iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(text))
        .map(|(_, status)| *status)
}

/// A full name split at its last whitespace into first and last name; a single word is a
/// first name.
fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let non_blank = |text: &str| {
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    };
    match name.trim().rsplit_once(char::is_whitespace) {
        Some((first, last)) => (non_blank(first), non_blank(last)),
        None => (non_blank(name), None),
    }
}

/// An id good enough to name a rejected row by.
fn readable_id(id: &str) -> Option<String> {
    let id = id.trim();
    (!id.is_empty() && !id.contains('\0')).then(|| id.to_owned())
}

/// The readable id of a JSON object, for a row error found before the fields are read.
fn object_id(map: &ColumnMap, object: &serde_json::Map<String, Value>) -> Option<String> {
    let mut ids = object
        .iter()
        .filter(|(key, _)| map.field_for(key) == Some(Field::Id));
    let (_, id) = ids.next()?;
    if ids.next().is_some() {
        return None;
    }
    json_scalar(id).and_then(|id| readable_id(&id))
}

/// Text or a number as text.
fn json_scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn json_kind_plural(value: &Value) -> &'static str {
    match value {
        Value::Null => "nulls",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "numbers",
        Value::String(_) => "text",
        Value::Array(_) => "lists",
        Value::Object(_) => "objects",
    }
}

fn note_ignored(ignored: &mut Vec<String>, key: &str) {
    let key = key.trim();
    if key.is_empty() || key.len() > MAX_IGNORED_KEY_BYTES || ignored.len() >= MAX_IGNORED_KEYS {
        return;
    }
    let lower = key.to_lowercase();
    if !ignored.iter().any(|seen| seen.to_lowercase() == lower) {
        ignored.push(key.to_owned());
    }
}

/// The header's columns for a message: at most [`MAX_LISTED_COLUMNS`], each clipped.
fn list_columns(names: &[String]) -> String {
    let mut listed: Vec<String> = names
        .iter()
        .take(MAX_LISTED_COLUMNS)
        .map(|name| {
            if name.is_empty() {
                "(blank)".to_owned()
            } else {
                format!("`{}`", clip(name))
            }
        })
        .collect();
    if names.len() > MAX_LISTED_COLUMNS {
        listed.push(format!("and {} more", names.len() - MAX_LISTED_COLUMNS));
    }
    listed.join(", ")
}

/// A value from the file, cut short for a message.
fn clip(text: &str) -> String {
    let mut chars = text.chars();
    let mut clipped: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        clipped.push('…');
    }
    clipped
}

/// Empty or only spaces and tabs (and a stray `\r`).
fn is_blank(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|byte| matches!(byte, b' ' | b'\t' | b'\r'))
}

/// Parses one framed CSV record (no line ending) into its fields; `None` if the bytes are not
/// exactly one record (framing and parsing disagree, which should not happen).
fn parse_csv_record(bytes: &[u8]) -> Option<csv::ByteRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(bytes.len().clamp(64, 8 * 1024))
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut rest = csv::ByteRecord::new();
    match (
        reader.read_byte_record(&mut record),
        reader.read_byte_record(&mut rest),
    ) {
        (Ok(true), Ok(false)) => Some(record),
        _ => None,
    }
}

/// How the input splits into records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// CSV records: `\r` or `\n` outside quotes ends a record (as in the `csv` crate).
    Csv,
    /// Lines ending in `\n`.
    Lines,
}

/// What [`Framer::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framed {
    /// A record, now in the caller's buffer (possibly empty: a blank line).
    Record,
    /// A record larger than [`MAX_ROW_BYTES`], skipped.
    TooLarge,
    /// The end of the input.
    Eof,
}

/// Where the CSV framing is within a record, following `csv-core`'s reader (default
/// settings: `,` delimiter, `"` quote with doubled quotes, CR/LF/CRLF terminators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    StartField,
    InField,
    InQuoted,
    /// A quote seen inside a quoted field: either the closing quote or half of `""`.
    QuoteInQuoted,
}

/// Splits the input into records, holding at most [`MAX_ROW_BYTES`] of one.
struct Framer<R> {
    input: BufReader<SkipBom<R>>,
    framing: Framing,
}

impl<R: Read> Framer<R> {
    fn new(reader: R, framing: Framing) -> Self {
        Framer {
            input: BufReader::with_capacity(64 * 1024, SkipBom::new(reader)),
            framing,
        }
    }

    /// Reads the next record into `out` (cleared first), without its terminator.
    fn next(&mut self, out: &mut Vec<u8>) -> io::Result<Framed> {
        out.clear();
        let mut scan = Scan::StartField;
        let mut seen = false;
        let mut too_large = false;
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if chunk.is_empty() {
                return Ok(match (seen, too_large) {
                    (false, _) => Framed::Eof,
                    (true, true) => Framed::TooLarge,
                    (true, false) => Framed::Record,
                });
            }
            seen = true;
            let end = match self.framing {
                Framing::Lines => chunk.iter().position(|byte| *byte == b'\n'),
                Framing::Csv => scan_csv(&mut scan, chunk),
            };
            let data = chunk.get(..end.unwrap_or(chunk.len())).unwrap_or(chunk);
            if !too_large {
                if out.len().saturating_add(data.len()) > MAX_ROW_BYTES {
                    too_large = true;
                    out.clear();
                } else {
                    out.extend_from_slice(data);
                }
            }
            let consumed = end.map_or(chunk.len(), |end| end + 1);
            self.input.consume(consumed);
            if end.is_some() {
                return Ok(if too_large {
                    Framed::TooLarge
                } else {
                    Framed::Record
                });
            }
        }
    }
}

/// Advances the CSV framing over `chunk`; the index of the terminator ending the record, if
/// the record ends within the chunk.
fn scan_csv(scan: &mut Scan, chunk: &[u8]) -> Option<usize> {
    for (index, byte) in chunk.iter().enumerate() {
        let terminator = matches!(byte, b'\n' | b'\r');
        *scan = match (*scan, byte) {
            (Scan::InQuoted, b'"') => Scan::QuoteInQuoted,
            (Scan::InQuoted, _) => Scan::InQuoted,
            (_, _) if terminator => return Some(index),
            (Scan::StartField, b'"') => Scan::InQuoted,
            (Scan::QuoteInQuoted, b'"') => Scan::InQuoted,
            (_, b',') => Scan::StartField,
            _ => Scan::InField,
        };
    }
    None
}

/// Drops a UTF-8 BOM at the start of the input.
struct SkipBom<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    started: bool,
}

impl<R> SkipBom<R> {
    fn new(inner: R) -> Self {
        SkipBom {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            started: false,
        }
    }
}

impl<R: Read> Read for SkipBom<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            while self.head_len < self.head.len() {
                let rest = self.head.get_mut(self.head_len..).unwrap_or_default();
                match self.inner.read(rest) {
                    Ok(0) => break,
                    Ok(read) => self.head_len = (self.head_len + read).min(self.head.len()),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
            self.started = true;
            if self.head.get(..self.head_len) == Some(BOM) {
                self.head_pos = self.head_len;
            }
        }
        if self.head_pos < self.head_len {
            let pending = self
                .head
                .get(self.head_pos..self.head_len)
                .unwrap_or_default();
            let count = pending.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..count), pending.get(..count)) {
                to.copy_from_slice(from);
            }
            self.head_pos += count;
            return Ok(count);
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[&str]) -> ColumnMap {
        ColumnMap::parse(pairs).unwrap()
    }

    fn read(input: &[u8], format: Format, pairs: &[&str]) -> Vec<Row> {
        RowReader::new(input, format, &map(pairs))
            .unwrap()
            .collect()
    }

    fn csv(input: &str) -> Vec<Row> {
        read(input.as_bytes(), Format::Csv, &[])
    }

    fn jsonl(input: &str) -> Vec<Row> {
        read(input.as_bytes(), Format::JsonLines, &[])
    }

    fn facts(row: &Row) -> &OwnerFacts {
        row.result.as_ref().unwrap()
    }

    fn row_error(row: &Row) -> &RowError {
        row.result.as_ref().unwrap_err()
    }

    fn file_error(input: &[u8], format: Format, pairs: &[&str]) -> RowsError {
        RowReader::new(input, format, &map(pairs)).unwrap_err()
    }

    fn owner(id: &str) -> OwnerFacts {
        OwnerFacts {
            external_id: id.to_owned(),
            ..OwnerFacts::default()
        }
    }

    #[test]
    fn fields_follow_canonical_names() {
        let names: Vec<&str> = Field::ALL.iter().map(|field| field.name()).collect();
        assert_eq!(names, CANONICAL_FIELDS);
        for (index, field) in Field::ALL.iter().enumerate() {
            assert_eq!(field.index(), index);
        }
    }

    #[test]
    fn csv_with_mapping_and_ignored_columns() {
        let input = "Employee Number,Mail,Favourite Colour,Title,,location\n\
                     E-1, ann@example.com ,blue,  Engineer ,x,\n\
                     E-2,,green,,,Paris\n";
        let mut reader = RowReader::new(
            input.as_bytes(),
            Format::Csv,
            &map(&["employee number = ID", "MAIL=email"]),
        )
        .unwrap();
        assert_eq!(reader.ignored_columns(), ["Favourite Colour"]);
        let rows: Vec<Row> = reader.by_ref().collect();
        assert_eq!(
            rows,
            vec![
                Row {
                    number: 1,
                    result: Ok(OwnerFacts {
                        email: Some("ann@example.com".to_owned()),
                        title: Some("Engineer".to_owned()),
                        ..owner("E-1")
                    }),
                },
                Row {
                    number: 2,
                    result: Ok(OwnerFacts {
                        location: Some("Paris".to_owned()),
                        ..owner("E-2")
                    }),
                },
            ]
        );
        assert_eq!(reader.read_error(), None);
    }

    #[test]
    fn header_names_are_trimmed_and_case_insensitive() {
        let rows = csv(" ID ,E-mail, EMAIL ,First_Name\r\n7,x,a@example.com,Ann\r\n");
        assert_eq!(
            facts(&rows[0]),
            &OwnerFacts {
                email: Some("a@example.com".to_owned()),
                first_name: Some("Ann".to_owned()),
                ..owner("7")
            }
        );
    }

    #[test]
    fn a_mapped_column_gives_its_mapped_field_even_if_canonically_named() {
        let rows = read(
            b"id,email,work\n1,home@x,work@x\n",
            Format::Csv,
            &["email=title", "work=email"],
        );
        let facts = facts(&rows[0]);
        assert_eq!(facts.email.as_deref(), Some("work@x"));
        assert_eq!(facts.title.as_deref(), Some("home@x"));
    }

    #[test]
    fn quoted_fields_may_hold_commas_quotes_and_line_breaks() {
        let rows = csv("id,title,department\n\"1\",\"Head, \"\"Ops\"\"\",\"Line\r\nTwo\"\n2,x,y\n");
        assert_eq!(facts(&rows[0]).title.as_deref(), Some("Head, \"Ops\""));
        assert_eq!(facts(&rows[0]).department.as_deref(), Some("Line\r\nTwo"));
        assert_eq!(rows[1].number, 2);
        assert_eq!(facts(&rows[1]).external_id, "2");
    }

    #[test]
    fn blank_lines_are_skipped_and_not_counted() {
        let rows = csv("\n\nid,email\n\n1,a@x\r\n   \n\r\n2,b@x");
        let numbered: Vec<(u64, &str)> = rows
            .iter()
            .map(|row| (row.number, facts(row).external_id.as_str()))
            .collect();
        assert_eq!(numbered, [(1, "1"), (2, "2")]);
    }

    #[test]
    fn names_are_split_at_the_last_space_when_first_or_last_is_missing() {
        let rows = csv("id,name,first_name,last_name\n\
                        1,Mary Ann  Smith,,\n\
                        2,Cher,,\n\
                        3,Ann Smith,Annie,\n\
                        4,Ann Smith,,Smythe\n\
                        5,Ann Smith,Annie,Smythe\n\
                        6,  ,,\n");
        let names: Vec<(Option<&str>, Option<&str>)> = rows
            .iter()
            .map(|row| {
                (
                    facts(row).first_name.as_deref(),
                    facts(row).last_name.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (Some("Mary Ann"), Some("Smith")),
                (Some("Cher"), None),
                (Some("Annie"), Some("Smith")),
                (Some("Ann"), Some("Smythe")),
                (Some("Annie"), Some("Smythe")),
                (None, None),
            ]
        );
    }

    #[test]
    fn statuses_are_read_case_insensitively() {
        let cases = [
            ("active", Some(OwnerStatus::Active)),
            ("ENABLED", Some(OwnerStatus::Active)),
            ("Inactive", Some(OwnerStatus::Inactive)),
            ("disabled", Some(OwnerStatus::Inactive)),
            (" Suspended ", Some(OwnerStatus::Inactive)),
            ("terminated", Some(OwnerStatus::Terminated)),
            ("Left", Some(OwnerStatus::Terminated)),
            ("deleted", Some(OwnerStatus::Deleted)),
            ("ARCHIVED", Some(OwnerStatus::Deleted)),
            ("", None),
            ("  ", None),
        ];
        let mut input = String::from("id,status\n");
        for (index, (status, _)) in cases.iter().enumerate() {
            input.push_str(&format!("{index},{status}\n"));
        }
        let rows = csv(&input);
        let statuses: Vec<Option<OwnerStatus>> = rows.iter().map(|row| facts(row).status).collect();
        let expected: Vec<Option<OwnerStatus>> = cases.iter().map(|(_, status)| *status).collect();
        assert_eq!(statuses, expected);
    }

    #[test]
    fn an_unknown_status_is_a_row_error_naming_it() {
        let rows = csv("id,status\n9,on leave\n10,active\n");
        let error = row_error(&rows[0]);
        assert_eq!(error.external_id.as_deref(), Some("9"));
        assert!(
            error.reason.contains("unknown status `on leave`"),
            "{}",
            error.reason
        );
        assert_eq!(facts(&rows[1]).status, Some(OwnerStatus::Active));

        let rows = jsonl("{\"id\": 3, \"status\": 1}\n");
        assert!(row_error(&rows[0]).reason.contains("unknown status `1`"));
    }

    #[test]
    fn csv_employee_ids_split_on_semicolons() {
        let rows = csv("id,employee_ids\n1, E1 ; ;E2;\n2,\n3,solo\n");
        let ids: Vec<&[String]> = rows
            .iter()
            .map(|row| facts(row).employee_ids.as_slice())
            .collect();
        assert_eq!(
            ids,
            [
                &["E1".to_owned(), "E2".to_owned()][..],
                &[],
                &["solo".to_owned()]
            ]
        );
    }

    #[test]
    fn a_utf8_bom_is_ignored() {
        let rows = read(b"\xEF\xBB\xBFid,email\n1,a@x\n", Format::Csv, &[]);
        assert_eq!(facts(&rows[0]).external_id, "1");
        // A BOM before a quoted header name does not upset the quoting.
        let rows = read(
            b"\xEF\xBB\xBF\"id\",\"e,mail\"\n1,a@x\n",
            Format::Csv,
            &["e,mail=email"],
        );
        assert_eq!(facts(&rows[0]).email.as_deref(), Some("a@x"));
        let rows = read(b"\xEF\xBB\xBF{\"id\":\"j\"}\n", Format::JsonLines, &[]);
        assert_eq!(facts(&rows[0]).external_id, "j");
        // Only at the start of the file.
        let rows = read(b"id,title\n1,\xEF\xBB\xBFx\n", Format::Csv, &[]);
        assert_eq!(facts(&rows[0]).title.as_deref(), Some("\u{feff}x"));
    }

    #[test]
    fn json_lines_with_numbers_arrays_and_blank_lines() {
        let input = "\n{\"id\": 42, \"Email\": \" a@x \", \"employee_ids\": [\"E1\", 7, null, \" \"], \"extra\": true}\n\
                     \r\n   \n\
                     {\"id\": \"b\", \"employee_ids\": \"E2; E3\", \"title\": null, \"location\": 12.5, \"name\": \"Bo Li\"}\r\n\
                     {\"id\": \"c\", \"employee_ids\": 99, \"Extra\": 1, \"other\": {}}";
        let mut reader =
            RowReader::new(input.as_bytes(), Format::JsonLines, &ColumnMap::default()).unwrap();
        let rows: Vec<Row> = reader.by_ref().collect();
        assert_eq!(
            rows,
            vec![
                Row {
                    number: 1,
                    result: Ok(OwnerFacts {
                        email: Some("a@x".to_owned()),
                        employee_ids: vec!["E1".to_owned(), "7".to_owned()],
                        ..owner("42")
                    }),
                },
                Row {
                    number: 2,
                    result: Ok(OwnerFacts {
                        employee_ids: vec!["E2".to_owned(), "E3".to_owned()],
                        location: Some("12.5".to_owned()),
                        first_name: Some("Bo".to_owned()),
                        last_name: Some("Li".to_owned()),
                        ..owner("b")
                    }),
                },
                Row {
                    number: 3,
                    result: Ok(OwnerFacts {
                        employee_ids: vec!["99".to_owned()],
                        ..owner("c")
                    }),
                },
            ]
        );
        assert_eq!(reader.ignored_columns(), ["extra", "other"]);
    }

    #[test]
    fn json_keys_follow_the_mapping() {
        let rows = read(
            b"{\"ownerId\": \"o1\", \"mail\": \"m@x\"}\n",
            Format::JsonLines,
            &["ownerid=id", "mail=email"],
        );
        assert_eq!(
            facts(&rows[0]),
            &OwnerFacts {
                email: Some("m@x".to_owned()),
                ..owner("o1")
            }
        );
    }

    #[test]
    fn a_missing_or_blank_id_is_a_row_error() {
        let rows = csv("id,email\n,a@x\n  ,b@x\n3,c@x\n");
        for row in &rows[..2] {
            assert_eq!(
                row_error(row),
                &RowError::new(None, "`id` is missing or blank")
            );
        }
        assert_eq!(facts(&rows[2]).external_id, "3");
        let rows = jsonl("{\"email\": \"a@x\"}\n{\"id\": null}\n{\"id\": \" \"}\n{\"id\": true}\n");
        for row in &rows[..3] {
            assert_eq!(row_error(row).reason, "`id` is missing or blank");
        }
        assert_eq!(
            row_error(&rows[3]).reason,
            "`id` must be text or a number, not true or false"
        );
    }

    #[test]
    fn a_nul_character_is_a_row_error_naming_the_field() {
        let rows = csv("id,email,title\n1,a\0b@x,t\n\0,x,y\n");
        assert_eq!(
            row_error(&rows[0]),
            &RowError::new(
                Some("1".to_owned()),
                "`email` contains a NUL character (U+0000)"
            )
        );
        assert_eq!(
            row_error(&rows[1]),
            &RowError::new(None, "`id` contains a NUL character (U+0000)")
        );
        let rows = jsonl(
            "{\"id\": \"2\", \"employee_ids\": [\"a\\u0000\"]}\n{\"id\": \"3\", \"title\": \"x\\u0000\"}\n",
        );
        assert_eq!(
            row_error(&rows[0]).reason,
            "`employee_ids` contains a NUL character (U+0000)"
        );
        assert_eq!(row_error(&rows[0]).external_id.as_deref(), Some("2"));
        assert_eq!(
            row_error(&rows[1]).reason,
            "`title` contains a NUL character (U+0000)"
        );
    }

    #[test]
    fn a_ragged_row_is_a_row_error() {
        let rows = csv("id,email,title\n1,a@x\n2,b@x,t,extra\n3,c@x,t\n");
        assert_eq!(
            row_error(&rows[0]),
            &RowError::new(Some("1".to_owned()), "row has 2 fields, the header has 3")
        );
        assert_eq!(
            row_error(&rows[1]),
            &RowError::new(Some("2".to_owned()), "row has 4 fields, the header has 3")
        );
        assert_eq!(facts(&rows[2]).external_id, "3");
    }

    #[test]
    fn an_invalid_utf8_row_is_a_row_error_and_reading_continues() {
        let rows = read(b"id,name\n1,Ann\n2,Ren\xE9e\n3,Bo\n", Format::Csv, &[]);
        assert_eq!(rows.len(), 3);
        assert_eq!(facts(&rows[0]).external_id, "1");
        assert_eq!(rows[1].number, 2);
        assert_eq!(
            row_error(&rows[1]),
            &RowError::new(
                Some("2".to_owned()),
                "row is not valid UTF-8: save the file as UTF-8"
            )
        );
        assert_eq!(rows[2].number, 3);
        assert_eq!(facts(&rows[2]).first_name.as_deref(), Some("Bo"));

        let rows = read(
            b"{\"id\":\"1\"}\n{\"id\":\"\xFF\"}\n{\"id\":\"3\"}\n",
            Format::JsonLines,
            &[],
        );
        assert_eq!(
            row_error(&rows[1]),
            &RowError::new(None, "row is not valid UTF-8: save the file as UTF-8")
        );
        assert_eq!(facts(&rows[2]).external_id, "3");
    }

    fn oversized_csv_row(quoted: bool) -> Vec<u8> {
        let mut input = b"id,title\n1,a\n2,".to_vec();
        let filler = MAX_ROW_BYTES + MAX_ROW_BYTES / 10;
        if quoted {
            input.push(b'"');
            for index in 0..filler {
                input.push(if index % 1000 == 0 { b'\n' } else { b'x' });
            }
            input.extend_from_slice(b"\"\n");
        } else {
            input.resize(input.len() + filler, b'x');
            input.push(b'\n');
        }
        input.extend_from_slice(b"3,c\n");
        input
    }

    #[test]
    fn an_oversized_row_is_a_row_error_and_the_next_row_is_read() {
        for quoted in [false, true] {
            let rows = read(&oversized_csv_row(quoted), Format::Csv, &[]);
            assert_eq!(rows.len(), 3, "quoted: {quoted}");
            assert_eq!(facts(&rows[0]).external_id, "1");
            assert_eq!(
                rows[1],
                Row {
                    number: 2,
                    result: Err(RowError::new(None, "row is larger than 1 MiB")),
                }
            );
            assert_eq!(rows[2].number, 3);
            assert_eq!(facts(&rows[2]).title.as_deref(), Some("c"));
        }

        let mut input = b"{\"id\":\"1\"}\n{\"id\":\"2\",\"title\":\"".to_vec();
        input.resize(input.len() + MAX_ROW_BYTES + MAX_ROW_BYTES / 10, b'x');
        input.extend_from_slice(b"\"}\n{\"id\":\"3\"}\n");
        let rows = read(&input, Format::JsonLines, &[]);
        assert_eq!(rows.len(), 3);
        assert_eq!(row_error(&rows[1]).reason, "row is larger than 1 MiB");
        assert_eq!(facts(&rows[2]).external_id, "3");
    }

    #[test]
    fn a_row_of_exactly_the_limit_is_read() {
        let mut input = b"id\n".to_vec();
        input.resize(input.len() + MAX_ROW_BYTES, b'7');
        input.push(b'\n');
        let rows = read(&input, Format::Csv, &[]);
        assert_eq!(facts(&rows[0]).external_id.len(), MAX_ROW_BYTES);
    }

    /// An endless-looking input produced on the fly: memory stays bounded.
    struct Generated {
        head: std::io::Cursor<Vec<u8>>,
        filler: usize,
        tail: std::io::Cursor<Vec<u8>>,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let read = self.head.read(buf)?;
            if read > 0 {
                return Ok(read);
            }
            if self.filler > 0 {
                let count = self.filler.min(buf.len());
                buf[..count].fill(b'x');
                self.filler -= count;
                return Ok(count);
            }
            self.tail.read(buf)
        }
    }

    #[test]
    fn an_oversized_row_is_never_held_whole() {
        let input = Generated {
            head: std::io::Cursor::new(b"id,title\n1,\"".to_vec()),
            filler: 16 * MAX_ROW_BYTES,
            tail: std::io::Cursor::new(b"\"\n2,b\n".to_vec()),
        };
        let mut reader = RowReader::new(input, Format::Csv, &ColumnMap::default()).unwrap();
        let first = reader.next().unwrap();
        assert_eq!(row_error(&first).reason, "row is larger than 1 MiB");
        assert!(
            reader.buf.capacity() <= 2 * MAX_ROW_BYTES,
            "{}",
            reader.buf.capacity()
        );
        assert_eq!(facts(&reader.next().unwrap()).external_id, "2");
        assert_eq!(reader.next(), None);
    }

    #[test]
    fn a_json_line_that_is_not_an_object_is_a_row_error() {
        let rows = jsonl("[1,2]\n42\n\"text\"\nnot json\n{\"id\": \"1\"\n{\"id\": \"6\"}\n");
        let reasons: Vec<&str> = rows[..5]
            .iter()
            .map(|row| row_error(row).reason.as_str())
            .collect();
        assert_eq!(reasons[0], "line is a list, not a JSON object");
        assert_eq!(reasons[1], "line is a number, not a JSON object");
        assert_eq!(reasons[2], "line is text, not a JSON object");
        assert!(
            reasons[3].starts_with("line is not valid JSON: "),
            "{}",
            reasons[3]
        );
        assert!(
            reasons[4].starts_with("line is not valid JSON: "),
            "{}",
            reasons[4]
        );
        assert_eq!(rows[5].number, 6);
        assert_eq!(facts(&rows[5]).external_id, "6");
    }

    #[test]
    fn json_keys_giving_one_field_twice_are_a_row_error() {
        let rows = jsonl("{\"id\": \"1\", \"Email\": \"a@x\", \"email\": \"b@x\"}\n");
        assert_eq!(
            row_error(&rows[0]),
            &RowError::new(
                Some("1".to_owned()),
                "keys `Email` and `email` both give `email`"
            )
        );
    }

    #[test]
    fn an_empty_file_is_a_file_error() {
        for input in [&b""[..], b"\n\r\n  \n", b"\xEF\xBB\xBF", b"\xEF\xBB\xBF\n"] {
            assert_eq!(file_error(input, Format::Csv, &[]), RowsError::Empty);
            assert_eq!(file_error(input, Format::JsonLines, &[]), RowsError::Empty);
        }
        assert_eq!(RowsError::Empty.to_string(), "the file is empty");
    }

    #[test]
    fn a_header_without_data_rows_reads_no_rows() {
        assert!(csv("id,email\n").is_empty());
    }

    #[test]
    fn a_non_utf8_header_is_a_file_error() {
        let error = file_error(b"id,pr\xE9nom\n1,x\n", Format::Csv, &[]);
        assert_eq!(error, RowsError::NotUtf8);
        assert_eq!(error.to_string(), "the file is not UTF-8: save it as UTF-8");
        // UTF-16 with its BOM.
        let utf16: Vec<u8> = "\u{feff}id,email\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(file_error(&utf16, Format::Csv, &[]), RowsError::NotUtf8);
    }

    #[test]
    fn no_id_column_is_a_file_error_naming_the_columns() {
        let error = file_error(b"email,Full Name,\n", Format::Csv, &[]);
        assert_eq!(
            error,
            RowsError::NoIdColumn {
                columns: "`email`, `Full Name`, (blank)".to_owned()
            }
        );
        let message = error.to_string();
        assert!(message.contains("`email`, `Full Name`"), "{message}");
        assert!(!message.contains('\n'));

        let many: Vec<String> = (0..30).map(|index| format!("c{index}")).collect();
        let error = file_error(many.join(",").as_bytes(), Format::Csv, &[]);
        assert!(error.to_string().contains("`c19`, and 10 more"), "{error}");
    }

    #[test]
    fn a_mapped_column_missing_from_the_header_is_a_file_error() {
        let error = file_error(b"id,email\n", Format::Csv, &["Work Mail=email"]);
        assert_eq!(
            error,
            RowsError::MappedColumnMissing {
                column: "Work Mail".to_owned()
            }
        );
        assert_eq!(
            error.to_string(),
            "the mapped column `Work Mail` is not in the header"
        );
    }

    #[test]
    fn two_columns_giving_one_field_is_a_file_error() {
        assert_eq!(
            file_error(b"id,Email,EMAIL\n", Format::Csv, &[]),
            RowsError::DuplicateField {
                field: "email".to_owned(),
                first: "Email".to_owned(),
                second: "EMAIL".to_owned(),
            }
        );
        let error = file_error(b"id,email,mail\n", Format::Csv, &["mail=email"]);
        assert_eq!(
            error.to_string(),
            "columns `email` and `mail` both give `email`"
        );
    }

    #[test]
    fn an_oversized_header_is_a_file_error() {
        let mut input = b"id,".to_vec();
        input.resize(MAX_ROW_BYTES + 10, b'h');
        assert_eq!(
            file_error(&input, Format::Csv, &[]),
            RowsError::HeaderTooLarge
        );
    }

    #[test]
    fn bad_mapping_pairs_are_named() {
        let cases: [(&[&str], &str); 6] = [
            (
                &["mail"],
                "bad column mapping `mail`: expected column=field",
            ),
            (
                &[" =email"],
                "bad column mapping ` =email`: the column name is empty",
            ),
            (
                &["mail=e-mail"],
                "bad column mapping `mail=e-mail`: unknown field `e-mail`; the fields are id, email, \
                 first_name, last_name, name, avatar_url, status, member_type, employee_ids, title, \
                 department, location",
            ),
            (
                &["mail="],
                "bad column mapping `mail=`: unknown field ``; the fields are id, email, first_name, last_name, name, avatar_url, status, member_type, employee_ids, title, department, location",
            ),
            (
                &["a=email", "b=EMAIL"],
                "bad column mapping `b=EMAIL`: columns `a` and `b` are both mapped to `email`",
            ),
            (
                &["Mail=email", " mail =title"],
                "bad column mapping ` mail =title`: column `Mail` is mapped twice",
            ),
        ];
        for (pairs, message) in cases {
            let error = ColumnMap::parse(pairs).unwrap_err();
            assert!(matches!(error, RowsError::BadMapping { .. }));
            assert_eq!(error.to_string(), message);
        }
        // The last `=` splits, so a column name may hold one.
        let map = ColumnMap::parse(&["a=b=email"]).unwrap();
        assert_eq!(map.field_for("A=B"), Some(Field::Email));
        assert_eq!(ColumnMap::parse::<&str>(&[]).unwrap(), ColumnMap::default());
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(Format::detect(Some("roster.CSV"), b"{"), Format::Csv);
        assert_eq!(
            Format::detect(Some("roster.jsonl"), b"id"),
            Format::JsonLines
        );
        assert_eq!(Format::detect(Some("a.ndjson"), b""), Format::JsonLines);
        assert_eq!(Format::detect(Some("a.json"), b""), Format::JsonLines);
        assert_eq!(
            Format::detect(Some("roster.txt"), b" \n\t{\"id\":1}"),
            Format::JsonLines
        );
        assert_eq!(Format::detect(None, b"\xEF\xBB\xBF{"), Format::JsonLines);
        assert_eq!(Format::detect(None, b"id,email"), Format::Csv);
        assert_eq!(Format::detect(None, b""), Format::Csv);
        assert_eq!(Format::detect(Some("noextension"), b"["), Format::Csv);

        assert_eq!(Format::from_content_type("text/csv"), Some(Format::Csv));
        assert_eq!(
            Format::from_content_type("Text/CSV; charset=utf-8"),
            Some(Format::Csv)
        );
        for json in [
            "application/x-ndjson",
            "application/jsonl",
            "application/x-jsonlines; charset=utf-8",
        ] {
            assert_eq!(Format::from_content_type(json), Some(Format::JsonLines));
        }
        assert_eq!(Format::from_content_type("application/json"), None);
        assert_eq!(Format::from_content_type(""), None);
    }

    /// A small deterministic generator (no dependency needed).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }

        fn text(&mut self, alphabet: &[&str], max_len: usize) -> String {
            let len = self.below(max_len + 1);
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    const ALPHABET: &[&str] = &[
        "a", "b", "Z", "0", " ", ",", "\"", "\n", "\r\n", "é", "ß", "日", ";", "'", "\t",
    ];

    #[test]
    fn ten_thousand_generated_rows_come_out_in_order() {
        let mut random = Lcg(7);
        let mut expected = Vec::new();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(["id", "email", "title", "employee_ids", "Notes"])
            .unwrap();
        let mut json = String::new();
        for index in 0..10_000 {
            let id = format!("id-{index}-{}", random.text(&["x", "é", ",", "\""], 3));
            let email = random.text(ALPHABET, 12);
            let title = random.text(ALPHABET, 20);
            let employee_ids = random.text(&["E", "1", ";", " "], 8);
            let notes = random.text(ALPHABET, 30);
            writer
                .write_record([&id, &email, &title, &employee_ids, &notes])
                .unwrap();
            json.push_str(
                &serde_json::json!({"id": id, "email": email, "title": title, "employee_ids": employee_ids, "notes": notes})
                    .to_string(),
            );
            json.push_str(if index % 3 == 0 { "\r\n\n" } else { "\n" });
            let non_blank = |text: &str| (!text.trim().is_empty()).then(|| text.trim().to_owned());
            expected.push(OwnerFacts {
                email: non_blank(&email),
                title: non_blank(&title),
                employee_ids: employee_ids.split(';').filter_map(non_blank).collect(),
                ..owner(&id)
            });
        }
        let file = writer.into_inner().unwrap();
        for (input, format) in [
            (&file[..], Format::Csv),
            (json.as_bytes(), Format::JsonLines),
        ] {
            // Read in awkward small pieces too.
            let rows: Vec<Row> =
                RowReader::new(Trickle::new(input, 7), format, &ColumnMap::default())
                    .unwrap()
                    .collect();
            assert_eq!(rows.len(), expected.len(), "{format:?}");
            for (index, (row, want)) in rows.iter().zip(&expected).enumerate() {
                assert_eq!(row.number, index as u64 + 1, "{format:?}");
                assert_eq!(facts(row), want, "{format:?} row {}", row.number);
            }
        }
    }

    /// Hands out the input a few bytes at a time, with interruptions.
    struct Trickle<'a> {
        input: &'a [u8],
        step: usize,
        calls: usize,
    }

    impl<'a> Trickle<'a> {
        fn new(input: &'a [u8], step: usize) -> Self {
            Trickle {
                input,
                step,
                calls: 0,
            }
        }
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let count = (1 + self.calls % self.step)
                .min(buf.len())
                .min(self.input.len());
            buf[..count].copy_from_slice(&self.input[..count]);
            self.input = &self.input[count..];
            Ok(count)
        }
    }

    #[test]
    fn a_bom_read_a_byte_at_a_time_is_still_skipped() {
        let input = b"\xEF\xBB\xBFid\n1\n";
        let rows: Vec<Row> =
            RowReader::new(Trickle::new(input, 1), Format::Csv, &ColumnMap::default())
                .unwrap()
                .collect();
        assert_eq!(facts(&rows[0]).external_id, "1");
        let broken = RowReader::new(
            Trickle::new(b"\xEF\xBBid\n1\n", 1),
            Format::Csv,
            &ColumnMap::default(),
        );
        assert_eq!(
            broken.unwrap_err(),
            RowsError::NotUtf8,
            "a broken BOM is not UTF-8"
        );
    }

    /// Fails after handing out its input.
    struct Failing<'a>(&'a [u8]);

    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let count = buf.len().min(self.0.len());
            buf[..count].copy_from_slice(&self.0[..count]);
            self.0 = &self.0[count..];
            Ok(count)
        }
    }

    #[test]
    fn a_read_error_ends_the_rows_and_is_reported() {
        let mut reader =
            RowReader::new(Failing(b"id\n1\n2\n"), Format::Csv, &ColumnMap::default()).unwrap();
        let rows: Vec<Row> = reader.by_ref().collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            reader.read_error(),
            Some(&RowsError::Read("disk on fire".to_owned()))
        );
        assert_eq!(reader.next(), None);
        assert_eq!(
            RowReader::new(Failing(b"id"), Format::Csv, &ColumnMap::default()).unwrap_err(),
            RowsError::Read("disk on fire".to_owned())
        );
    }

    #[test]
    fn csv_framing_agrees_with_the_csv_crate() {
        let alphabet: &[&[u8]] = &[
            b"a", b",", b"\"", b"\n", b"\r", b"\r\n", b" ", b"\"\"", b"\xFF",
        ];
        let mut random = Lcg(11);
        for _ in 0..3_000 {
            let len = random.below(40);
            let input: Vec<u8> = (0..len)
                .flat_map(|_| alphabet[random.below(alphabet.len())].iter().copied())
                .collect();
            let mut direct = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(&input[..]);
            let expected: Vec<csv::ByteRecord> =
                direct.byte_records().map(Result::unwrap).collect();
            let mut framer = Framer::new(&input[..], Framing::Csv);
            let mut buf = Vec::new();
            let mut framed = Vec::new();
            while framer.next(&mut buf).unwrap() == Framed::Record {
                if !buf.is_empty() {
                    framed.push(parse_csv_record(&buf).unwrap());
                }
            }
            assert_eq!(framed, expected, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn no_input_makes_it_panic() {
        let alphabet: &[&[u8]] = &[
            b"id",
            b"email",
            b"status",
            b"name",
            b"employee_ids",
            b",",
            b"\"",
            b"\n",
            b"\r",
            b" ",
            b"{",
            b"}",
            b"[",
            b"]",
            b":",
            b"\"id\"",
            b"\\u0000",
            b"\0",
            b"\xFF",
            b"\xEF\xBB\xBF",
            b"active",
            b"1",
            b"\xC3\xA9",
            b"\xC3",
        ];
        let mut random = Lcg(3);
        for _ in 0..3_000 {
            let len = random.below(60);
            let input: Vec<u8> = (0..len)
                .flat_map(|_| alphabet[random.below(alphabet.len())].iter().copied())
                .collect();
            for format in [Format::Csv, Format::JsonLines] {
                if let Ok(reader) = RowReader::new(&input[..], format, &ColumnMap::default()) {
                    let mut last = 0;
                    for row in reader {
                        assert_eq!(row.number, last + 1);
                        last = row.number;
                    }
                }
            }
        }
    }
}
