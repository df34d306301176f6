//! The uploader: the files a raw container wrote, read back as its interface's outputs
//! (flytecopilot's `sidecar`).

use std::path::Path;

use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, container_error, execution_error, literal, literal_type, scalar,
    Blob, BlobMetadata, BlobType, ContainerError, ErrorDocument, Literal, LiteralCollection,
    LiteralMap, LiteralType, Primitive, Scalar, Schema, SimpleType, TypedInterface, Void,
};
use alula_storage::stream;
use alula_storage::uri::Located;
use bytes::Bytes;
use prost::Message;

use crate::text::parse_primitive;
use crate::{CopilotError, ERROR_FILE};

/// Larger files are not read as a primitive: a string output of megabytes is a file's job.
pub const MAX_PRIMITIVE_BYTES: u64 = 1024 * 1024;

/// Where the uploader writes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The attempt's output prefix: `outputs.pb` or `error.pb` go here.
    pub output_prefix: String,
    /// Where blobs go (`<raw>/<output name>`); the output prefix when not given.
    pub raw_output_prefix: String,
}

/// What the upload found.
#[derive(Debug)]
pub enum Outcome {
    /// `outputs.pb` was written.
    Outputs(LiteralMap),
    /// `error.pb` was written, saying this.
    Failed(CopilotError),
}

/// Reads the outputs under `from`, uploads blobs and writes `outputs.pb`; when the files do not
/// make the outputs, writes `error.pb` saying why. Errors are failures to write either.
pub async fn upload(
    from: &Path,
    interface: &TypedInterface,
    to: &Destination,
) -> Result<Outcome, CopilotError> {
    // A prefix that cannot be opened cannot take error.pb either: fail before reading outputs.
    let prefix = &to.output_prefix;
    Located::open(prefix).map_err(CopilotError::storage("the output prefix"))?;
    match collect(from, interface, to).await {
        Ok(outputs) => {
            put(prefix, "outputs.pb", outputs.encode_to_vec()).await?;
            Ok(Outcome::Outputs(outputs))
        }
        Err(e) => {
            write_error(prefix, &e).await?;
            Ok(Outcome::Failed(e))
        }
    }
}

/// The URI `name` below the folder `prefix`.
fn child(prefix: &str, name: &str) -> String {
    format!("{}/{name}", prefix.trim_end_matches('/'))
}

/// `error.pb` for `error` under the output prefix `prefix`.
pub async fn write_error(prefix: &str, error: &CopilotError) -> Result<(), CopilotError> {
    let origin = if error.is_user_error() {
        execution_error::ErrorKind::User
    } else {
        execution_error::ErrorKind::System
    };
    let document = ErrorDocument {
        error: Some(ContainerError {
            // flytecopilot's code for everything its uploader reports.
            code: "OutputUploadFailed".into(),
            message: error.to_string(),
            kind: container_error::Kind::NonRecoverable as i32,
            origin: origin as i32,
            ..Default::default()
        }),
    };
    put(prefix, "error.pb", document.encode_to_vec()).await
}

/// Writes the document `name` (`outputs.pb`, `error.pb`) under the output prefix.
async fn put(prefix: &str, name: &str, bytes: Vec<u8>) -> Result<(), CopilotError> {
    stream::put(&child(prefix, name), Bytes::from(bytes))
        .await
        .map_err(CopilotError::storage(format!("writing {name}")))
}

async fn collect(
    from: &Path,
    interface: &TypedInterface,
    to: &Destination,
) -> Result<LiteralMap, CopilotError> {
    let error_file = from.join(ERROR_FILE);
    if error_file.is_file() {
        let text = read_limited(&error_file, ERROR_FILE)?;
        return Err(CopilotError::UserError(text.trim_end().to_string()));
    }
    let raw = if to.raw_output_prefix.is_empty() {
        &to.output_prefix
    } else {
        &to.raw_output_prefix
    };
    Located::open(raw).map_err(CopilotError::storage("the raw output prefix"))?;
    let mut outputs = LiteralMap::default();
    let Some(vars) = interface.outputs.as_ref() else {
        return Ok(outputs);
    };
    for (name, var) in &vars.variables {
        let ty = var.r#type.as_ref().ok_or_else(|| CopilotError::Output {
            var: name.clone(),
            reason: "the interface gives it no type".into(),
        })?;
        let literal = Box::pin(read_output(&from.join(name), ty, &child(raw, name), name)).await?;
        outputs.literals.insert(name.clone(), literal);
    }
    Ok(outputs)
}

fn missing(var: &str, path: &Path) -> CopilotError {
    CopilotError::Output {
        var: var.to_string(),
        reason: format!(
            "the task's container wrote no file {} for this output",
            path.display()
        ),
    }
}

fn read_limited(path: &Path, var: &str) -> Result<String, CopilotError> {
    let meta = std::fs::metadata(path).map_err(CopilotError::io(path))?;
    if meta.len() > MAX_PRIMITIVE_BYTES {
        return Err(CopilotError::Output {
            var: var.to_string(),
            reason: format!(
                "{} holds {} bytes; a value file may hold at most {MAX_PRIMITIVE_BYTES}",
                path.display(),
                meta.len()
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(CopilotError::io(path))?;
    String::from_utf8(bytes).map_err(|_| CopilotError::Output {
        var: var.to_string(),
        reason: format!("{} is not UTF-8 text", path.display()),
    })
}

fn scalar(value: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(Scalar {
            value: Some(value),
        }))),
        ..Default::default()
    }
}

/// The literal of type `ty` the file (or folder) at `path` holds; blobs are uploaded to `raw`.
async fn read_output(
    path: &Path,
    ty: &LiteralType,
    raw: &str,
    var: &str,
) -> Result<Literal, CopilotError> {
    let err = |reason: String| CopilotError::Output {
        var: var.to_string(),
        reason,
    };
    match &ty.r#type {
        Some(literal_type::Type::Simple(s)) => {
            let simple = SimpleType::try_from(*s).map_err(|_| err(format!("unknown type {s}")))?;
            if !path.exists() {
                return Err(missing(var, path));
            }
            if path.is_dir() {
                return Err(err(format!("{} is a folder, not a file", path.display())));
            }
            match simple {
                SimpleType::None => Ok(scalar(scalar::Value::NoneType(Void {}))),
                SimpleType::Binary => {
                    let bytes = std::fs::read(path).map_err(CopilotError::io(path))?;
                    Ok(scalar(scalar::Value::Binary(
                        alula_idl::flyteidl::core::Binary {
                            value: bytes,
                            tag: String::new(),
                        },
                    )))
                }
                _ => {
                    let text = read_limited(path, var)?;
                    let value = parse_primitive(simple, &text)
                        .map_err(|reason| err(format!("{}: {reason}", path.display())))?;
                    Ok(scalar(scalar::Value::Primitive(Primitive {
                        value: Some(value),
                    })))
                }
            }
        }
        Some(literal_type::Type::Blob(blob_type)) => upload_blob(path, blob_type, raw, var).await,
        Some(literal_type::Type::CollectionType(item)) => {
            // A folder of files named 0, 1, 2, ... (the downloader's layout for lists).
            if !path.is_dir() {
                return Err(if path.exists() {
                    err(format!(
                        "{} must be a folder of files named 0, 1, 2, ...",
                        path.display()
                    ))
                } else {
                    missing(var, path)
                });
            }
            let mut items = LiteralCollection::default();
            for i in 0.. {
                let element = path.join(i.to_string());
                if !element.exists() {
                    break;
                }
                let lit = Box::pin(read_output(
                    &element,
                    item,
                    &child(raw, &i.to_string()),
                    &format!("{var}[{i}]"),
                ))
                .await?;
                items.literals.push(lit);
            }
            Ok(Literal {
                value: Some(literal::Value::Collection(items)),
                ..Default::default()
            })
        }
        Some(literal_type::Type::Schema(schema_type)) => {
            // A schema is a folder (of parquet files, say), uploaded as a multipart blob is.
            if !path.is_dir() {
                return Err(if path.exists() {
                    err(format!("{} must be a folder for a schema", path.display()))
                } else {
                    missing(var, path)
                });
            }
            stream::upload_dir(path, raw)
                .await
                .map_err(CopilotError::storage(format!("output [{var}]")))?;
            Ok(scalar(scalar::Value::Schema(Schema {
                uri: raw.to_string(),
                r#type: Some(schema_type.clone()),
            })))
        }
        _ => Err(err(
            "raw containers can return primitives, files, folders, schemas and lists of them"
                .into(),
        )),
    }
}

async fn upload_blob(
    path: &Path,
    blob_type: &BlobType,
    raw: &str,
    var: &str,
) -> Result<Literal, CopilotError> {
    let meta = std::fs::metadata(path).map_err(|_| missing(var, path))?;
    let multipart = meta.is_dir();
    let what = format!("output [{var}]");
    // Streamed both ways: a part at a time, never the whole file in memory.
    if multipart {
        stream::upload_dir(path, raw)
            .await
            .map_err(CopilotError::storage(what))?;
    } else {
        stream::upload(path, raw)
            .await
            .map_err(CopilotError::storage(what))?;
    }
    let dimensionality = if multipart {
        BlobDimensionality::Multipart
    } else {
        BlobDimensionality::Single
    };
    Ok(scalar(scalar::Value::Blob(Blob {
        metadata: Some(BlobMetadata {
            r#type: Some(BlobType {
                format: blob_type.format.clone(),
                dimensionality: dimensionality as i32,
            }),
        }),
        uri: raw.to_string(),
    })))
}
