//! Inputs and outputs rendered by type: scalars, lists, maps, dataclasses, files and directories
//! (download links through the data proxy), data frames (their columns and a download link).
//!
//! Rendering is in two steps: the object URIs a value map refers to (files, data frames,
//! offloaded literals) are first signed through `DataProxyService`, the way any API client
//! would get a link, then the map is rendered without further calls. A raw `file://` or `s3://`
//! URI is shown as text, never linked: a browser could not follow it, and a link the API did
//! not sign would bypass its checks.

mod frame;
mod json;
mod render;

use std::collections::HashMap;

use alula_idl::flyteidl::core::{literal, scalar, Literal, LiteralMap, VariableMap};
use alula_idl::flyteidl::service::data_proxy_service_server::DataProxyService;
use alula_idl::flyteidl::service::CreateDownloadLocationRequest;
use maud::Markup;

use crate::Api;

/// How long a download link the page shows stays valid.
const LINK_LIFETIME_SECS: i64 = 3600;
/// At most this many objects of one value map are signed (a list of ten thousand files shows
/// its first items' links only; the rest are capped by the renderer anyway).
const MAX_LINKS: usize = 200;
/// At most this many data frames of one value map are previewed (each may read a few MB).
const MAX_PREVIEWS: usize = 5;

/// Each value of `values` as `<div class="value" data-name="{name}">`, typed by `types` (the
/// interface's variables) where known.
pub async fn literal_map(api: &Api, values: &LiteralMap, types: Option<&VariableMap>) -> Markup {
    let (mut uris, mut frames) = (Vec::new(), Vec::new());
    for value in values.literals.values() {
        collect_uris(value, &mut uris, &mut frames);
    }
    uris.sort();
    uris.dedup();
    frames.dedup();
    let mut resolved = render::Resolved {
        links: sign_all(api, &uris).await,
        frames: HashMap::new(),
    };
    // Only frames the data proxy signed a link for: it decided this caller may read the
    // object (a value may name any URI, another project's data included).
    for uri in frames
        .iter()
        .filter(|uri| resolved.links.contains_key(*uri))
        .take(MAX_PREVIEWS)
    {
        if let Some(preview) = frame::preview(&api.config.storage, uri).await {
            resolved.frames.insert(uri.clone(), preview);
        }
    }
    render::map(values, types, &resolved)
}

/// Signed download URLs of the objects `values` refers to, by native URI. A URI the data proxy
/// refuses (not a data object of this deployment, a folder) has none and is shown as text.
async fn sign_all(api: &Api, uris: &[String]) -> HashMap<String, String> {
    let mut links = HashMap::new();
    for uri in uris.iter().take(MAX_LINKS) {
        let request = CreateDownloadLocationRequest {
            native_url: uri.clone(),
            expires_in: Some(alula_idl::wkt::Duration {
                seconds: LINK_LIFETIME_SECS,
                nanos: 0,
            }),
        };
        match DataProxyService::create_download_location(&api.data_proxy, api.request(request))
            .await
        {
            Ok(answer) => {
                links.insert(uri.clone(), answer.into_inner().signed_url);
            }
            Err(status) => tracing::debug!(%uri, error = %status.message(), "no download link"),
        }
    }
    links
}

/// The URIs of objects a literal refers to, in the order the renderer shows them (it shows at
/// most [`render::MAX_ITEMS`] items of a list or map, so only those are collected).
/// Data frames also go to `frames`, for a preview.
fn collect_uris(value: &Literal, out: &mut Vec<String>, frames: &mut Vec<String>) {
    match &value.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Blob(b)) if render::is_single_file(b) => out.push(b.uri.clone()),
            Some(scalar::Value::StructuredDataset(sd)) if !sd.uri.is_empty() => {
                out.push(sd.uri.clone());
                frames.push(sd.uri.clone());
            }
            Some(scalar::Value::Union(u)) => {
                if let Some(inner) = &u.value {
                    collect_uris(inner, out, frames);
                }
            }
            _ => {}
        },
        Some(literal::Value::Collection(c)) => {
            for item in c.literals.iter().take(render::MAX_ITEMS) {
                collect_uris(item, out, frames);
            }
        }
        Some(literal::Value::Map(m)) => {
            for item in m.literals.values().take(render::MAX_ITEMS) {
                collect_uris(item, out, frames);
            }
        }
        Some(literal::Value::OffloadedMetadata(o)) => out.push(o.uri.clone()),
        None => {}
    }
}

#[cfg(test)]
mod tests;
