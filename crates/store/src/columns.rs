//! Rows sent to PostgreSQL as columns: one binary `text[]` array per column, expanded by
//! `unnest` (each value cast to its column's type in the SQL).
//!
//! PostgreSQL parses a JSON parameter twice (the `::json` cast validates it, then
//! `json_to_recordset` lexes it again into a per-row hash of keys); a binary array arrives
//! as length-prefixed values it only copies. For 1.1M membership edges in 1,000-row
//! statements that was 6.2 s of PostgreSQL's time against 5.1 s. The values are the text
//! serde writes for each field (so the casts read what `json_to_recordset` read before).

use std::fmt::Write as _;
use std::io::Write as _;

use diesel::pg::Pg;
use diesel::serialize::{IsNull, Output, ToSql};
use diesel::sql_types::{Array, Nullable, Text};
use serde::ser::{self, Impossible, Serialize};

/// PostgreSQL's type oid of `text`, the element type of the arrays.
const TEXT_OID: i32 = 25;

/// One column of a chunk of rows: PostgreSQL's binary `text[]` encoding, built as the rows
/// are added (each value written once, straight into the buffer).
#[derive(Debug, Default)]
pub(crate) struct TextArray {
    len: i32,
    has_null: bool,
    /// The elements: a 4-byte big-endian length (-1 for NULL), then the bytes.
    elements: Vec<u8>,
}

impl TextArray {
    fn push_null(&mut self) {
        self.has_null = true;
        self.len += 1;
        self.elements.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Appends the text `write` produces.
    fn push_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> std::fmt::Result,
    ) -> Result<(), Unsupported> {
        let start = self.elements.len();
        self.elements.extend_from_slice(&[0; 4]);
        write(&mut self.elements).map_err(|_| Unsupported("a value that cannot be written"))?;
        let n = i32::try_from(self.elements.len() - start - 4)
            .map_err(|_| Unsupported("a value over 2 GiB"))?;
        self.elements[start..start + 4].copy_from_slice(&n.to_be_bytes());
        self.len += 1;
        Ok(())
    }

    fn push_str(&mut self, s: &str) -> Result<(), Unsupported> {
        self.push_with(|out| {
            out.extend_from_slice(s.as_bytes());
            Ok(())
        })
    }
}

impl ToSql<Array<Nullable<Text>>, Pg> for TextArray {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        // array_recv's header: dimensions, whether any element is NULL, the element type,
        // then each dimension's length and lower bound.
        out.write_all(&1i32.to_be_bytes())?;
        out.write_all(&i32::from(self.has_null).to_be_bytes())?;
        out.write_all(&TEXT_OID.to_be_bytes())?;
        out.write_all(&self.len.to_be_bytes())?;
        out.write_all(&1i32.to_be_bytes())?;
        out.write_all(&self.elements)?;
        Ok(IsNull::No)
    }
}

/// A chunk of rows as one [`TextArray`] per column of `names`.
#[derive(Debug)]
pub(crate) struct Columns {
    names: Vec<&'static str>,
    arrays: Vec<TextArray>,
    rows: i32,
}

impl Columns {
    /// No rows yet, for columns `names` (in the order the statement binds them).
    pub(crate) fn new(names: impl IntoIterator<Item = &'static str>) -> Self {
        let names: Vec<&'static str> = names.into_iter().collect();
        let arrays = names.iter().map(|_| TextArray::default()).collect();
        Self {
            names,
            arrays,
            rows: 0,
        }
    }

    /// Adds `row` (a struct): each field named like a column goes to that column; other
    /// fields are left out, and a column the row has no field for gets NULL.
    pub(crate) fn push<T: Serialize + ?Sized>(&mut self, row: &T) -> Result<(), Unsupported> {
        row.serialize(RowSerializer(self))?;
        self.rows += 1;
        for array in &mut self.arrays {
            if array.len < self.rows {
                array.push_null();
            }
        }
        Ok(())
    }

    /// Rows added.
    pub(crate) fn rows(&self) -> usize {
        self.rows as usize
    }

    /// Bytes of values held (about what the statement sends).
    pub(crate) fn bytes(&self) -> usize {
        self.arrays.iter().map(|a| a.elements.len()).sum()
    }

    /// The column arrays, in the order of the names given to [`Columns::new`].
    pub(crate) fn arrays(&self) -> &[TextArray] {
        &self.arrays
    }
}

/// A row that cannot be written as columns (a bug: every stored row is a flat struct).
#[derive(Debug)]
pub(crate) struct Unsupported(&'static str);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a row holds {} (rows are flat structs)", self.0)
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Self("a value serde refused")
    }
}

/// Writes formatted text into a `Vec<u8>`.
struct Utf8<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Utf8<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Serializes a struct into [`Columns`].
struct RowSerializer<'c>(&'c mut Columns);

/// Serializes one field's value into its column's array.
struct ValueSerializer<'a>(&'a mut TextArray);

impl ValueSerializer<'_> {
    fn display(self, v: impl std::fmt::Display) -> Result<(), Unsupported> {
        self.0.push_with(|out| write!(Utf8(out), "{v}"))
    }
}

/// Methods that write their value as text (as `Display` does, which is how serde_json
/// writes integers).
macro_rules! displayed {
    ($($method:ident($arg:ty)),* $(,)?) => {
        $(fn $method(self, v: $arg) -> Result<(), Unsupported> {
            self.display(v)
        })*
    };
}

macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty, $what:literal;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Unsupported> {
            Err(Unsupported($what))
        })*
    };
}

impl<'c> ser::Serializer for RowSerializer<'c> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Unsupported> {
        Ok(self)
    }

    unsupported! {
        serialize_bool(bool) -> (), "a bare value";
        serialize_i8(i8) -> (), "a bare value";
        serialize_i16(i16) -> (), "a bare value";
        serialize_i32(i32) -> (), "a bare value";
        serialize_i64(i64) -> (), "a bare value";
        serialize_u8(u8) -> (), "a bare value";
        serialize_u16(u16) -> (), "a bare value";
        serialize_u32(u32) -> (), "a bare value";
        serialize_u64(u64) -> (), "a bare value";
        serialize_f32(f32) -> (), "a bare value";
        serialize_f64(f64) -> (), "a bare value";
        serialize_char(char) -> (), "a bare value";
        serialize_str(&str) -> (), "a bare value";
        serialize_bytes(&[u8]) -> (), "a bare value";
        serialize_none() -> (), "a bare value";
        serialize_unit() -> (), "a bare value";
        serialize_unit_struct(&'static str) -> (), "a bare value";
        serialize_unit_variant(&'static str, u32, &'static str) -> (), "a bare value";
        serialize_seq(Option<usize>) -> Self::SerializeSeq, "a sequence";
        serialize_tuple(usize) -> Self::SerializeTuple, "a tuple";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a tuple";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "an enum";
        serialize_map(Option<usize>) -> Self::SerializeMap, "a map";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "an enum";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Unsupported> {
        Err(Unsupported("a bare value"))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported("a newtype"))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported("an enum"))
    }
}

impl ser::SerializeStruct for RowSerializer<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        let Some(i) = self.0.names.iter().position(|n| *n == key) else {
            return Ok(());
        };
        let array = &mut self.0.arrays[i];
        if array.len > self.0.rows {
            return Err(Unsupported("a field twice"));
        }
        value.serialize(ValueSerializer(array))
    }

    fn end(self) -> Result<(), Unsupported> {
        Ok(())
    }
}

impl<'a> ser::Serializer for ValueSerializer<'a> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.0.push_str(if v { "true" } else { "false" })
    }
    displayed! {
        serialize_i8(i8), serialize_i16(i16), serialize_i32(i32), serialize_i64(i64),
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32), serialize_u64(u64),
        serialize_char(char),
    }
    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.0.push_str(v)
    }
    fn collect_str<T: std::fmt::Display + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        self.display(v)
    }
    fn serialize_none(self) -> Result<(), Unsupported> {
        self.0.push_null();
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Unsupported> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.serialize_none()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.0.push_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Unsupported> {
        v.serialize(self)
    }

    unsupported! {
        serialize_f32(f32) -> (), "a float";
        serialize_f64(f64) -> (), "a float";
        serialize_bytes(&[u8]) -> (), "bytes";
        serialize_unit_struct(&'static str) -> (), "a unit struct";
        serialize_seq(Option<usize>) -> Self::SerializeSeq, "a sequence";
        serialize_tuple(usize) -> Self::SerializeTuple, "a tuple";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a tuple";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "an enum";
        serialize_map(Option<usize>) -> Self::SerializeMap, "a map";
        serialize_struct(&'static str, usize) -> Self::SerializeStruct, "a nested struct";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "an enum";
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported("an enum"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Row {
        id: String,
        name: Option<String>,
        enabled: Option<bool>,
        count: i64,
        at: Option<chrono::NaiveDateTime>,
        ignored: &'static str,
    }

    /// The elements of `array` as (text or NULL).
    fn elements(array: &TextArray) -> Vec<Option<String>> {
        let (mut out, mut rest) = (Vec::new(), &array.elements[..]);
        while !rest.is_empty() {
            let n = i32::from_be_bytes(rest[..4].try_into().unwrap());
            rest = &rest[4..];
            if n < 0 {
                out.push(None);
            } else {
                let n = n as usize;
                out.push(Some(String::from_utf8(rest[..n].to_vec()).unwrap()));
                rest = &rest[n..];
            }
        }
        out
    }

    #[test]
    fn rows_become_one_array_per_column_with_nulls_where_a_value_is_missing() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 25)
            .unwrap()
            .and_hms_micro_opt(9, 30, 0, 123_456)
            .unwrap();
        let mut c = Columns::new(["count", "id", "name", "enabled", "at", "absent"]);
        c.push(&Row {
            id: "u-1 \"é\"".into(),
            name: None,
            enabled: Some(true),
            count: -5,
            at: Some(at),
            ignored: "x",
        })
        .unwrap();
        c.push(&Row {
            id: "u-2".into(),
            name: Some("Ann".into()),
            enabled: None,
            count: 7,
            at: None,
            ignored: "y",
        })
        .unwrap();
        assert_eq!(c.rows(), 2);
        let got: Vec<Vec<Option<String>>> = c.arrays().iter().map(elements).collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            vec![
                vec![s("-5"), s("7")],
                vec![s("u-1 \"é\""), s("u-2")],
                vec![None, s("Ann")],
                vec![s("true"), None],
                // As serde_json writes it, so PostgreSQL's cast reads the same timestamp.
                vec![s(serde_json::to_value(at).unwrap().as_str().unwrap()), None],
                vec![None, None],
            ]
        );
        assert!(!c.arrays()[0].has_null && c.arrays()[2].has_null);
        assert!(c.bytes() > 0);
    }

    #[test]
    fn a_row_that_is_not_a_flat_struct_is_an_error() {
        let mut c = Columns::new(["a"]);
        assert!(c.push(&("g", "m")).is_err());
        assert!(c.push(&vec![1, 2]).is_err());
        #[derive(serde::Serialize)]
        struct Nested {
            a: Vec<u8>,
        }
        assert!(c.push(&Nested { a: vec![1] }).is_err());
    }
}
