//! The downloader: an attempt's inputs as files a raw container reads (flytecopilot's
//! `download`).

use std::path::Path;

use alula_idl::flyteidl::core::{
    blob_type::BlobDimensionality, literal, scalar, Blob, Literal, LiteralCollection, LiteralMap,
    Scalar,
};
use alula_idl::wkt;
use alula_storage::stream;
use alula_storage::uri::UriError;
use base64::Engine;
use prost::Message;
use serde_json::{json, Map, Value};

use crate::text::format_primitive;
use crate::CopilotError;

/// How the inputs are described besides one file per input (`DataLoadingConfig.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `inputs.json`: every input as a JSON value.
    Json,
    /// `inputs.yaml`: the same document. JSON is YAML (1.2), so it is written as JSON text.
    Yaml,
    /// Only `inputs.pb` (always written).
    Proto,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "yaml" => Ok(Format::Yaml),
            "proto" => Ok(Format::Proto),
            _ => Err(format!("unknown format {s:?} (json, yaml or proto)")),
        }
    }
}

/// Reads the literal map at `inputs_uri` and writes it under `to` (made if missing).
pub async fn download(inputs_uri: &str, to: &Path, format: Format) -> Result<(), CopilotError> {
    let bytes = stream::get(inputs_uri).await.map_err(|e| match e {
        UriError::NotFound { .. } => CopilotError::NoInputs(inputs_uri.to_string()),
        e => CopilotError::storage("reading the inputs")(e),
    })?;
    let inputs = LiteralMap::decode(bytes).map_err(|source| CopilotError::Decode {
        what: inputs_uri.to_string(),
        source,
    })?;
    std::fs::create_dir_all(to).map_err(CopilotError::io(to))?;
    let (values, local) = Downloader.map(&inputs, to, "").await?;

    let pb = to.join("inputs.pb");
    std::fs::write(&pb, local.encode_to_vec()).map_err(CopilotError::io(&pb))?;
    let document = match format {
        Format::Json => Some("inputs.json"),
        Format::Yaml => Some("inputs.yaml"),
        Format::Proto => None,
    };
    if let Some(name) = document {
        let path = to.join(name);
        let text = serde_json::to_vec_pretty(&Value::Object(values)).unwrap_or_default();
        std::fs::write(&path, text).map_err(CopilotError::io(&path))?;
    }
    Ok(())
}

struct Downloader;

impl Downloader {
    /// Writes each entry of `map` under `dir`; returns the entries as JSON and the map with blob
    /// URIs replaced by the local paths. `var` names the enclosing input in errors.
    async fn map(
        &self,
        map: &LiteralMap,
        dir: &Path,
        var: &str,
    ) -> Result<(Map<String, Value>, LiteralMap), CopilotError> {
        let mut values = Map::new();
        let mut local = LiteralMap::default();
        for (name, literal) in &map.literals {
            check_name(name, var)?;
            let var = if var.is_empty() {
                name.clone()
            } else {
                format!("{var}.{name}")
            };
            let (value, lit) = Box::pin(self.literal(literal, &dir.join(name), &var)).await?;
            values.insert(name.clone(), value);
            local.literals.insert(name.clone(), lit);
        }
        Ok((values, local))
    }

    async fn literal(
        &self,
        literal: &Literal,
        path: &Path,
        var: &str,
    ) -> Result<(Value, Literal), CopilotError> {
        let err = |reason: String| CopilotError::Input {
            var: var.to_string(),
            reason,
        };
        let mut local = literal.clone();
        let value = match &literal.value {
            Some(literal::Value::Scalar(s)) => {
                let (value, scalar) = self.scalar(s, path, var).await?;
                local.value = Some(literal::Value::Scalar(Box::new(scalar)));
                value
            }
            Some(literal::Value::Collection(c)) => {
                std::fs::create_dir_all(path).map_err(CopilotError::io(path))?;
                let mut values = Vec::new();
                let mut items = LiteralCollection::default();
                for (i, item) in c.literals.iter().enumerate() {
                    let (v, l) = Box::pin(self.literal(item, &path.join(i.to_string()), var))
                        .await
                        .map_err(|e| match e {
                            CopilotError::Input { reason, .. } => {
                                err(format!("element {i}: {reason}"))
                            }
                            other => other,
                        })?;
                    values.push(v);
                    items.literals.push(l);
                }
                local.value = Some(literal::Value::Collection(items));
                Value::Array(values)
            }
            Some(literal::Value::Map(m)) => {
                std::fs::create_dir_all(path).map_err(CopilotError::io(path))?;
                let (values, map) = self.map(m, path, var).await?;
                local.value = Some(literal::Value::Map(map));
                Value::Object(values)
            }
            Some(literal::Value::OffloadedMetadata(o)) => {
                return Err(err(format!(
                    "offloaded literals ({}) are not supported by raw containers",
                    o.uri
                )))
            }
            None => return Err(err("empty literal".into())),
        };
        Ok((value, local))
    }

    async fn scalar(
        &self,
        s: &Scalar,
        path: &Path,
        var: &str,
    ) -> Result<(Value, Scalar), CopilotError> {
        let err = |reason: String| CopilotError::Input {
            var: var.to_string(),
            reason,
        };
        let write = |bytes: &[u8]| std::fs::write(path, bytes).map_err(CopilotError::io(path));
        let value = match &s.value {
            Some(scalar::Value::Primitive(p)) => {
                let prim = p
                    .value
                    .as_ref()
                    .ok_or_else(|| err("empty primitive".into()))?;
                write(format_primitive(prim).map_err(err)?.as_bytes())?;
                primitive_json(prim)
            }
            Some(scalar::Value::Blob(b)) => {
                let multipart = b
                    .metadata
                    .as_ref()
                    .and_then(|m| m.r#type.as_ref())
                    .is_some_and(|t| t.dimensionality == BlobDimensionality::Multipart as i32);
                self.blob(&b.uri, multipart, path, var).await?;
                let local = Blob {
                    metadata: b.metadata.clone(),
                    uri: path.display().to_string(),
                };
                return Ok((
                    Value::String(local.uri.clone()),
                    Scalar {
                        value: Some(scalar::Value::Blob(local)),
                    },
                ));
            }
            Some(scalar::Value::Schema(schema)) => {
                self.blob(&schema.uri, true, path, var).await?;
                let mut local = schema.clone();
                local.uri = path.display().to_string();
                return Ok((
                    Value::String(local.uri.clone()),
                    Scalar {
                        value: Some(scalar::Value::Schema(local)),
                    },
                ));
            }
            Some(scalar::Value::Binary(b)) => {
                write(&b.value)?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(&b.value))
            }
            Some(scalar::Value::NoneType(_)) => {
                write(b"null")?;
                Value::Null
            }
            Some(scalar::Value::Error(e)) => {
                write(e.message.as_bytes())?;
                Value::String(e.message.clone())
            }
            Some(scalar::Value::Generic(g)) => {
                let v = struct_json(g);
                write(&serde_json::to_vec(&v).unwrap_or_default())?;
                v
            }
            Some(scalar::Value::Union(u)) => match &u.value {
                Some(inner) => {
                    let (v, l) = Box::pin(self.literal(inner, path, var)).await?;
                    let mut union = u.as_ref().clone();
                    union.value = Some(Box::new(l));
                    return Ok((
                        v,
                        Scalar {
                            value: Some(scalar::Value::Union(Box::new(union))),
                        },
                    ));
                }
                None => return Err(err("empty union".into())),
            },
            _ => {
                return Err(err(
                    "this kind of value cannot be handed to a raw container".into(),
                ))
            }
        };
        Ok((value, s.clone()))
    }

    /// Streams the blob at `uri` to `path`: one file, or a folder of files for a multipart blob
    /// (every object below the URI, at its relative path).
    async fn blob(
        &self,
        uri: &str,
        multipart: bool,
        path: &Path,
        var: &str,
    ) -> Result<(), CopilotError> {
        let what = format!("input [{var}]");
        if multipart {
            let files = stream::download_dir(uri, path)
                .await
                .map_err(CopilotError::storage(what))?;
            if files == 0 {
                // Flyte hands over an empty folder as such; a wrong URI looks the same.
                tracing::warn!("input [{var}]: no files under {uri}");
            }
            return Ok(());
        }
        match stream::download(uri, path).await {
            Ok(_) => Ok(()),
            Err(UriError::NotFound { .. }) => Err(CopilotError::Input {
                var: var.to_string(),
                reason: format!("no file at {uri}"),
            }),
            Err(e) => Err(CopilotError::storage(what)(e)),
        }
    }
}

/// Names become file names: no separators, no `.`/`..`.
fn check_name(name: &str, var: &str) -> Result<(), CopilotError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(CopilotError::Input {
            var: if var.is_empty() { name } else { var }.to_string(),
            reason: format!("{name:?} cannot be a file name"),
        });
    }
    Ok(())
}

/// A primitive in `inputs.json`, as flytecopilot's Go values marshal: a duration is a number of
/// nanoseconds, a datetime RFC 3339 text.
fn primitive_json(p: &alula_idl::flyteidl::core::primitive::Value) -> Value {
    use alula_idl::flyteidl::core::primitive::Value as P;
    match p {
        P::Integer(i) => json!(i),
        P::FloatValue(f) => json!(f),
        P::StringValue(s) => json!(s),
        P::Boolean(b) => json!(b),
        P::Datetime(_) => json!(format_primitive(p).unwrap_or_default()),
        P::Duration(d) => json!(d.seconds as i128 * 1_000_000_000 + d.nanos as i128),
    }
}

fn struct_json(s: &wkt::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect(),
    )
}

fn value_json(v: &wkt::Value) -> Value {
    use wkt::value::Kind;
    match &v.kind {
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => struct_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(value_json).collect()),
        Some(Kind::NullValue(_)) | None => Value::Null,
    }
}
