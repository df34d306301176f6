//! `are_types_castable`: may a value of the upstream type be bound to a downstream input?
//!
//! The rules are Flyte's compiler rules (`validators/typing.go`): the checker is chosen by the
//! *downstream* type, and a single-variant upstream union is unwrapped first.

use alula_idl::flyteidl::core::schema_type::schema_column::SchemaColumnType;
use alula_idl::flyteidl::core::{
    literal_type::Type, LiteralType, SchemaType, SimpleType, StructuredDatasetType,
};
use alula_idl::wkt::{value::Kind, Struct};

/// True when a value of type `upstream` can flow into an input declared as `downstream`.
pub fn are_types_castable(upstream: &LiteralType, downstream: &LiteralType) -> bool {
    if let Some(Type::UnionType(union)) = &upstream.r#type {
        if let [only] = union.variants.as_slice() {
            if casts_from(downstream, only) {
                return true;
            }
        }
    }
    casts_from(downstream, upstream)
}

/// True when the type is Flyte's `none` (a simple NONE).
pub fn is_none_type(t: &LiteralType) -> bool {
    matches!(t.r#type, Some(Type::Simple(s)) if s == SimpleType::None as i32)
}

/// An input may be left unbound when its type is a union with a `none` variant (`Optional[T]`).
pub fn is_optional_type(t: &LiteralType) -> bool {
    matches!(&t.r#type, Some(Type::UnionType(u)) if u.variants.iter().any(is_none_type))
}

/// Dispatches on the downstream type, as Flyte's `getTypeChecker` does.
fn casts_from(downstream: &LiteralType, upstream: &LiteralType) -> bool {
    match &downstream.r#type {
        Some(Type::CollectionType(down_elem)) => match &upstream.r#type {
            Some(Type::CollectionType(up_elem)) => casts_from(down_elem, up_elem),
            _ => false,
        },
        Some(Type::MapValueType(down_value)) => match &upstream.r#type {
            Some(Type::MapValueType(up_value)) => casts_from(down_value, up_value),
            _ => false,
        },
        Some(Type::Schema(down)) => schema_casts_from(down, upstream),
        Some(Type::StructuredDatasetType(down)) => structured_dataset_casts_from(down, upstream),
        Some(Type::UnionType(down)) => union_casts_from(&down.variants, upstream),
        Some(Type::Blob(down)) => match &upstream.r#type {
            // An empty downstream format accepts any blob (FlyteFile without a format).
            Some(Type::Blob(up)) => {
                down.format.is_empty()
                    || (up.format == down.format && up.dimensionality == down.dimensionality)
            }
            _ => false,
        },
        _ if is_none_type(downstream) => is_none_type(upstream),
        _ => trivial_casts_from(downstream, upstream),
    }
}

/// Simple and enum types: equal once metadata, annotation and structure are ignored, with
/// enum <-> string allowed, structure tags honoured and dataclass schemas compared.
fn trivial_casts_from(downstream: &LiteralType, upstream: &LiteralType) -> bool {
    let is_string = |t: &LiteralType| matches!(t.r#type, Some(Type::Simple(s)) if s == SimpleType::String as i32);
    let is_enum = |t: &LiteralType| matches!(t.r#type, Some(Type::EnumType(_)));
    if (is_enum(upstream) && is_string(downstream)) || (is_enum(downstream) && is_string(upstream))
    {
        return true;
    }
    if !structure_tag(upstream).is_empty() && structure_tag(upstream) != structure_tag(downstream) {
        return false;
    }
    let is_struct = |t: &LiteralType| matches!(t.r#type, Some(Type::Simple(s)) if s == SimpleType::Struct as i32);
    if is_struct(upstream) && is_struct(downstream) {
        // Older flytekit versions produced no (or wrong) JSON schemas, so a missing schema on
        // either side is accepted rather than breaking registrations that used to work.
        return match (&upstream.metadata, &downstream.metadata) {
            (Some(up), Some(down)) => up == down || is_json_schema_superset(up, down),
            _ => true,
        };
    }
    // Simple, enum and blob types carry no nested LiteralType, so comparing the `type` oneof
    // alone is the same as comparing whole messages with metadata/annotation/structure cleared.
    upstream.r#type == downstream.r#type
}

fn structure_tag(t: &LiteralType) -> &str {
    t.structure.as_ref().map_or("", |s| s.tag.as_str())
}

/// Whether the upstream dataclass schema has every property of the downstream one, with equal
/// property schemas.
///
/// Flyte uses a full JSON-schema comparison library here; this is a simpler structural check of
/// the top-level `properties`, which covers a dataclass gaining fields (the common case).
fn is_json_schema_superset(upstream: &Struct, downstream: &Struct) -> bool {
    let properties = |s: &Struct| match s.fields.get("properties").and_then(|v| v.kind.as_ref()) {
        Some(Kind::StructValue(props)) => Some(props.fields.clone()),
        _ => None,
    };
    match (properties(upstream), properties(downstream)) {
        (Some(up), Some(down)) => down
            .iter()
            .all(|(name, schema)| up.get(name).is_some_and(|u| u == schema)),
        _ => false,
    }
}

fn union_casts_from(down_variants: &[LiteralType], upstream: &LiteralType) -> bool {
    if let Some(Type::UnionType(up)) = &upstream.r#type {
        // Every upstream variant must fit some downstream variant.
        return up
            .variants
            .iter()
            .all(|u| down_variants.iter().any(|d| casts_from(d, u)));
    }
    // Otherwise exactly one downstream variant may accept the value: two would be ambiguous.
    let mut matching = down_variants
        .iter()
        .filter(|d| are_types_castable(upstream, d));
    matching.next().is_some() && matching.next().is_none()
}

fn schema_casts_from(down: &SchemaType, upstream: &LiteralType) -> bool {
    match &upstream.r#type {
        Some(Type::Schema(up)) => schema_columns_subset(up, down),
        Some(Type::StructuredDatasetType(up)) => {
            // A FlyteSchema can only be read from parquet.
            (up.format.is_empty() || up.format.eq_ignore_ascii_case("parquet"))
                && dataset_columns_cover_schema(up, down)
        }
        _ => false,
    }
}

fn structured_dataset_casts_from(down: &StructuredDatasetType, upstream: &LiteralType) -> bool {
    match &upstream.r#type {
        // Structured datasets are nullable.
        _ if is_none_type(upstream) => true,
        Some(Type::Schema(up)) => {
            (down.format.is_empty() || down.format.eq_ignore_ascii_case("parquet"))
                && schema_covers_dataset(up, down)
        }
        Some(Type::StructuredDatasetType(up)) => {
            // An empty format on either side means "whatever the producer wrote".
            let formats_agree = up.format.is_empty()
                || down.format.is_empty()
                || up.format.eq_ignore_ascii_case(&down.format);
            formats_agree && dataset_columns_subset(up, down)
        }
        _ => false,
    }
}

/// Downstream columns must all exist upstream with the same type; no columns on either side
/// means a generic schema, which accepts anything.
fn schema_columns_subset(up: &SchemaType, down: &SchemaType) -> bool {
    if up.columns.is_empty() || down.columns.is_empty() {
        return true;
    }
    down.columns.iter().all(|d| {
        up.columns
            .iter()
            .any(|u| u.name == d.name && u.r#type == d.r#type)
    })
}

fn dataset_columns_subset(up: &StructuredDatasetType, down: &StructuredDatasetType) -> bool {
    if up.columns.is_empty() || down.columns.is_empty() {
        return true;
    }
    down.columns.iter().all(|d| {
        up.columns.iter().any(|u| {
            u.name == d.name
                && match (&u.literal_type, &d.literal_type) {
                    (Some(ut), Some(dt)) => casts_from(dt, ut),
                    (None, None) => true,
                    _ => false,
                }
        })
    })
}

fn dataset_columns_cover_schema(up: &StructuredDatasetType, down: &SchemaType) -> bool {
    if up.columns.is_empty() || down.columns.is_empty() {
        return true;
    }
    down.columns.iter().all(|d| {
        up.columns.iter().any(|u| {
            u.name == d.name
                && u.literal_type.as_ref().is_some_and(|t| {
                    t.r#type == column_simple_type(d.r#type).map(|s| Type::Simple(s as i32))
                })
        })
    })
}

fn schema_covers_dataset(up: &SchemaType, down: &StructuredDatasetType) -> bool {
    if up.columns.is_empty() || down.columns.is_empty() {
        return true;
    }
    down.columns.iter().all(|d| {
        up.columns.iter().any(|u| {
            u.name == d.name
                && d.literal_type.as_ref().is_some_and(|t| {
                    t.r#type == column_simple_type(u.r#type).map(|s| Type::Simple(s as i32))
                })
        })
    })
}

fn column_simple_type(column_type: i32) -> Option<SimpleType> {
    Some(match SchemaColumnType::try_from(column_type).ok()? {
        SchemaColumnType::Integer => SimpleType::Integer,
        SchemaColumnType::Float => SimpleType::Float,
        SchemaColumnType::String => SimpleType::String,
        SchemaColumnType::Boolean => SimpleType::Boolean,
        SchemaColumnType::Datetime => SimpleType::Datetime,
        SchemaColumnType::Duration => SimpleType::Duration,
    })
}
