//! The type of a literal value, as Flyte's compiler infers it for literal bindings
//! (`LiteralTypeForLiteral`).

use alula_idl::flyteidl::core::{
    literal, literal_type::Type, primitive, scalar, Literal, LiteralType, Primitive, Scalar,
    SimpleType, StructuredDatasetType, UnionType,
};

use super::{display_type, simple};

/// The inferred type of `literal`, or `None` when it carries nothing to infer from (an unset
/// value or a blob without metadata).
pub fn literal_type_of(literal: &Literal) -> Option<LiteralType> {
    match literal.value.as_ref()? {
        literal::Value::Scalar(s) => literal_type_of_scalar(s),
        literal::Value::Collection(c) => Some(LiteralType {
            r#type: Some(Type::CollectionType(Box::new(common_type(&c.literals)))),
            ..Default::default()
        }),
        literal::Value::Map(m) => Some(LiteralType {
            r#type: Some(Type::MapValueType(Box::new(common_type(
                m.literals.values(),
            )))),
            ..Default::default()
        }),
        literal::Value::OffloadedMetadata(o) => o.inferred_type.clone(),
    }
}

/// The inferred type of a scalar literal.
pub fn literal_type_of_scalar(scalar: &Scalar) -> Option<LiteralType> {
    let t = match scalar.value.as_ref()? {
        scalar::Value::Primitive(p) => return literal_type_of_primitive(p),
        scalar::Value::Blob(b) => Type::Blob(b.metadata.as_ref()?.r#type.clone()?),
        scalar::Value::Binary(_) => Type::Simple(SimpleType::Binary as i32),
        scalar::Value::Schema(s) => Type::Schema(s.r#type.clone().unwrap_or_default()),
        scalar::Value::StructuredDataset(sd) => Type::StructuredDatasetType(
            sd.metadata
                .as_ref()
                .and_then(|m| m.structured_dataset_type.clone())
                .unwrap_or_else(StructuredDatasetType::default),
        ),
        scalar::Value::NoneType(_) => Type::Simple(SimpleType::None as i32),
        scalar::Value::Error(_) => Type::Simple(SimpleType::Error as i32),
        scalar::Value::Generic(_) => Type::Simple(SimpleType::Struct as i32),
        scalar::Value::Union(u) => Type::UnionType(UnionType {
            variants: u.r#type.clone().into_iter().collect(),
        }),
    };
    Some(LiteralType {
        r#type: Some(t),
        ..Default::default()
    })
}

/// The simple type of a primitive, `None` when the primitive is unset.
pub fn literal_type_of_primitive(p: &Primitive) -> Option<LiteralType> {
    let s = match p.value.as_ref()? {
        primitive::Value::Integer(_) => SimpleType::Integer,
        primitive::Value::FloatValue(_) => SimpleType::Float,
        primitive::Value::StringValue(_) => SimpleType::String,
        primitive::Value::Boolean(_) => SimpleType::Boolean,
        primitive::Value::Datetime(_) => SimpleType::Datetime,
        primitive::Value::Duration(_) => SimpleType::Duration,
    };
    Some(simple(s))
}

/// The element type of a collection (or the value type of a map): the one type all elements
/// share, a union of the distinct element types, or `none` when empty.
fn common_type<'a>(literals: impl IntoIterator<Item = &'a Literal>) -> LiteralType {
    let mut distinct: Vec<LiteralType> = Vec::new();
    let mut empty_collection_type = None;
    for lit in literals {
        let Some(t) = literal_type_of(lit) else {
            continue;
        };
        // An empty nested collection says nothing about the element type; only use it when
        // nothing else is known.
        if matches!(&lit.value, Some(literal::Value::Collection(c)) if c.literals.is_empty()) {
            empty_collection_type = Some(t);
            continue;
        }
        if !distinct.contains(&t) {
            distinct.push(t);
        }
    }
    if distinct.is_empty() {
        distinct.extend(empty_collection_type);
    }
    match distinct.len() {
        0 => simple(SimpleType::None),
        1 => distinct.remove(0),
        _ => {
            // Sorted so that the same values always give the same union.
            distinct.sort_by_cached_key(display_type);
            LiteralType {
                r#type: Some(Type::UnionType(UnionType { variants: distinct })),
                ..Default::default()
            }
        }
    }
}
