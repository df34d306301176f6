//! The uploader: the files a raw container wrote, read back as its interface's outputs
//! (flytecopilot's `sidecar`).

use std::path::Path;

use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, container_error, execution_error, literal, literal_type, scalar,
    Blob, BlobMetadata, BlobType, ContainerError, ErrorDocument, Literal, LiteralCollection,
    LiteralMap, LiteralType, Primitive, Scalar, SimpleType, TypedInterface, Void,
};
use bytes::Bytes;
use prost::Message;

use crate::location::{Location, Stores};
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
    stores: &Stores,
    from: &Path,
    interface: &TypedInterface,
    to: &Destination,
) -> Result<Outcome, CopilotError> {
    let prefix = stores.open(&to.output_prefix)?;
    match collect(stores, from, interface, to).await {
        Ok(outputs) => {
            put(&prefix.join("outputs.pb"), outputs.encode_to_vec()).await?;
            Ok(Outcome::Outputs(outputs))
        }
        Err(e) => {
            write_error(&prefix, &e).await?;
            Ok(Outcome::Failed(e))
        }
    }
}

/// `error.pb` for `error` under the output prefix `prefix`.
pub async fn write_error(prefix: &Location, error: &CopilotError) -> Result<(), CopilotError> {
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
    put(&prefix.join("error.pb"), document.encode_to_vec()).await
}

async fn put(at: &Location, bytes: Vec<u8>) -> Result<(), CopilotError> {
    Ok(at.storage.put(&at.key, Bytes::from(bytes)).await?)
}

async fn collect(
    stores: &Stores,
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
    let raw = stores.open(raw)?;
    let mut outputs = LiteralMap::default();
    let Some(vars) = interface.outputs.as_ref() else {
        return Ok(outputs);
    };
    for (name, var) in &vars.variables {
        let ty = var.r#type.as_ref().ok_or_else(|| CopilotError::Output {
            var: name.clone(),
            reason: "the interface gives it no type".into(),
        })?;
        let literal = Box::pin(read_output(&from.join(name), ty, &raw.join(name), name)).await?;
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
    raw: &Location,
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
                    &raw.join(&i.to_string()),
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
        _ => Err(err(
            "raw containers can return primitives, files, folders and lists of them".into(),
        )),
    }
}

async fn upload_blob(
    path: &Path,
    blob_type: &BlobType,
    raw: &Location,
    var: &str,
) -> Result<Literal, CopilotError> {
    let meta = std::fs::metadata(path).map_err(|_| missing(var, path))?;
    let multipart = meta.is_dir();
    if multipart {
        upload_tree(path, raw).await?;
    } else {
        let bytes = std::fs::read(path).map_err(CopilotError::io(path))?;
        raw.storage.put(&raw.key, Bytes::from(bytes)).await?;
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
        uri: raw.uri(),
    })))
}

async fn upload_tree(dir: &Path, to: &Location) -> Result<(), CopilotError> {
    let entries = std::fs::read_dir(dir).map_err(CopilotError::io(dir))?;
    for entry in entries {
        let entry = entry.map_err(CopilotError::io(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(CopilotError::io(&path))?;
        if kind.is_dir() {
            Box::pin(upload_tree(&path, &to.join(&name))).await?;
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).map_err(CopilotError::io(&path))?;
            let at = to.join(&name);
            at.storage.put(&at.key, Bytes::from(bytes)).await?;
        }
    }
    Ok(())
}
