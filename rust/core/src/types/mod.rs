//! Flyte's type system on `LiteralType`: castability, inference of a literal's type, and a
//! short human rendering used in error messages.

mod castable;
mod display;
mod infer;

pub use castable::{are_types_castable, is_none_type, is_optional_type};
pub use display::{display_type, TypeDisplay};
pub use infer::{literal_type_of, literal_type_of_primitive, literal_type_of_scalar};

use alula_idl::flyteidl::core::{literal_type::Type, LiteralType, SimpleType};

/// A `LiteralType` of the given simple type, without metadata.
pub fn simple(simple: SimpleType) -> LiteralType {
    LiteralType {
        r#type: Some(Type::Simple(simple as i32)),
        ..Default::default()
    }
}
