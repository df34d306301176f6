//! Alula's wire contract: the flyteidl-compatible protobuf messages, gRPC services and their
//! proto3 JSON mapping, generated at build time from `proto/` (see `build.rs`).
//!
//! Module paths follow protobuf packages: `flyteidl::core::Literal`,
//! `flyteidl::service::admin_service_server::AdminService`, `datacatalog::Dataset`, ...
//! Well-known types (`Timestamp`, `Duration`, `Struct`, wrappers, `Any`) are generated here too,
//! as `google::protobuf`, re-exported as [`wkt`], with their proto3 JSON mapping in `wkt.rs`.

// Generated code: prost/tonic/pbjson output is not ours to lint.
#[allow(
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    missing_docs,
    rustdoc::all,
    unused_qualifications
)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/modules.rs"));
}

pub use generated::google::protobuf as wkt;
pub use generated::{alula, datacatalog, flyteidl, google};

pub mod codes;
pub mod raw_codec;
pub mod registry;
mod wkt_json;

/// The encoded `FileDescriptorSet` of every file in `proto/` plus its imports.
///
/// Served by gRPC reflection and compared field by field with flyteidl's own descriptors in the
/// parity test.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"));
