//! A short human rendering of a `LiteralType` for error messages: `list[int]`,
//! `map[str, float]`, `union[int, none]`, `blob(single, csv)`, `struct(Point)`, `enum{a,b}`.

use std::fmt::{self, Display, Formatter};

use alula_idl::flyteidl::core::blob_type::BlobDimensionality;
use alula_idl::flyteidl::core::schema_type::schema_column::SchemaColumnType;
use alula_idl::flyteidl::core::{literal_type::Type, LiteralType, SimpleType};
use alula_idl::wkt::value::Kind;

/// Displays a `LiteralType` in the short human form.
pub struct TypeDisplay<'a>(pub &'a LiteralType);

/// The short human form of a `LiteralType`.
pub fn display_type(t: &LiteralType) -> String {
    TypeDisplay(t).to_string()
}

impl Display for TypeDisplay<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let t = self.0;
        match &t.r#type {
            None => f.write_str("unset"),
            Some(Type::Simple(s)) => {
                f.write_str(simple_name(*s))?;
                if *s == SimpleType::Struct as i32 {
                    if let Some(title) = schema_title(t) {
                        write!(f, "({title})")?;
                    }
                }
                Ok(())
            }
            Some(Type::CollectionType(elem)) => write!(f, "list[{}]", TypeDisplay(elem)),
            Some(Type::MapValueType(value)) => write!(f, "map[str, {}]", TypeDisplay(value)),
            Some(Type::Blob(b)) => {
                let dim = match BlobDimensionality::try_from(b.dimensionality) {
                    Ok(BlobDimensionality::Multipart) => "multipart",
                    _ => "single",
                };
                if b.format.is_empty() {
                    write!(f, "blob({dim})")
                } else {
                    write!(f, "blob({dim}, {})", b.format)
                }
            }
            Some(Type::EnumType(e)) => write!(f, "enum{{{}}}", e.values.join(",")),
            Some(Type::UnionType(u)) => {
                f.write_str("union[")?;
                for (i, v) in u.variants.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", TypeDisplay(v))?;
                }
                f.write_str("]")
            }
            Some(Type::Schema(s)) => {
                f.write_str("schema")?;
                if !s.columns.is_empty() {
                    let cols: Vec<String> = s
                        .columns
                        .iter()
                        .map(|c| format!("{}: {}", c.name, column_name(c.r#type)))
                        .collect();
                    write!(f, "({})", cols.join(", "))?;
                }
                Ok(())
            }
            Some(Type::StructuredDatasetType(sd)) => {
                f.write_str("structured_dataset")?;
                let mut parts: Vec<String> = Vec::new();
                if !sd.format.is_empty() {
                    parts.push(sd.format.clone());
                }
                for c in &sd.columns {
                    let col_type = c
                        .literal_type
                        .as_ref()
                        .map_or_else(|| "unset".to_string(), display_type);
                    parts.push(format!("{}: {col_type}", c.name));
                }
                if !parts.is_empty() {
                    write!(f, "({})", parts.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

fn simple_name(s: i32) -> &'static str {
    match SimpleType::try_from(s) {
        Ok(SimpleType::None) => "none",
        Ok(SimpleType::Integer) => "int",
        Ok(SimpleType::Float) => "float",
        Ok(SimpleType::String) => "str",
        Ok(SimpleType::Boolean) => "bool",
        Ok(SimpleType::Datetime) => "datetime",
        Ok(SimpleType::Duration) => "timedelta",
        Ok(SimpleType::Binary) => "binary",
        Ok(SimpleType::Error) => "error",
        Ok(SimpleType::Struct) => "struct",
        Err(_) => "unknown",
    }
}

fn column_name(c: i32) -> &'static str {
    match SchemaColumnType::try_from(c) {
        Ok(SchemaColumnType::Integer) => "int",
        Ok(SchemaColumnType::Float) => "float",
        Ok(SchemaColumnType::String) => "str",
        Ok(SchemaColumnType::Boolean) => "bool",
        Ok(SchemaColumnType::Datetime) => "datetime",
        Ok(SchemaColumnType::Duration) => "timedelta",
        Err(_) => "unknown",
    }
}

/// The dataclass name flytekit records as the JSON schema's `title`.
fn schema_title(t: &LiteralType) -> Option<&str> {
    match t.metadata.as_ref()?.fields.get("title")?.kind.as_ref()? {
        Kind::StringValue(title) => Some(title),
        _ => None,
    }
}
