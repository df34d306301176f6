//! `DataProxyService.GetData`: resolves `flyte://v1/<project>/<domain>/<execution>/...` URIs
//! to data held by admin.
//!
//! Forms served:
//! - `.../<execution>/i` and `.../<execution>/o`: an execution's inputs or outputs (an Alula
//!   addition: flyteadmin only serves node-level URIs), `/<name>` appended for one literal;
//! - `.../<execution>/<node>/i|o[/<name>]`: a node execution's inputs or outputs;
//! - `.../<execution>/<node>/d`: signed URLs of the node's deck.
//!
//! Data admin holds inline is answered from the database; data it knows only by URI (offloaded
//! literals, outputs a task wrote to storage) is read from the configured storage.
//!
//! A node named `i` or `o` is shadowed by the execution-level form; Flyte's node ids are
//! `n0`, `n1`, ... so that costs nothing in practice.

use alula_idl::flyteidl::admin::{
    execution_closure, literal_map_blob, node_execution_closure, LiteralMapBlob,
    NodeExecutionGetDataRequest, NodeExecutionGetRequest, UrlBlob, WorkflowExecutionGetDataRequest,
    WorkflowExecutionGetRequest,
};
use alula_idl::flyteidl::core::{LiteralMap, NodeExecutionIdentifier, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::{get_data_response::Data, GetDataRequest, GetDataResponse};

use prost::Message;

use crate::dataproxy::{storage_error, DataProxy};
use crate::error::{AdminError, AdminResult};
use crate::objects::data_object;

const PREFIX: &str = "flyte://v1/";
/// The largest literal map read from storage for one answer: well under the 64 MiB messages
/// the server sends.
const MAX_LITERAL_BYTES: u64 = 48 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Io {
    Inputs,
    Outputs,
}

impl Io {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "i" => Some(Self::Inputs),
            "o" => Some(Self::Outputs),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Inputs => "inputs",
            Self::Outputs => "outputs",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Execution(Io, Option<&'a str>),
    Node(&'a str, Io, Option<&'a str>),
    Deck(&'a str),
}

fn parse(url: &str) -> AdminResult<(WorkflowExecutionIdentifier, Target<'_>)> {
    let invalid = |why: &str| AdminError::invalid(format!("flyte_url {url:?} {why}"));
    let rest = url
        .strip_prefix(PREFIX)
        .ok_or_else(|| invalid("does not start with flyte://v1/"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(invalid("has an empty path segment"));
    }
    let (exec, tail) = match parts.as_slice() {
        [project, domain, name, tail @ ..] if !tail.is_empty() => (
            WorkflowExecutionIdentifier {
                project: (*project).to_string(),
                domain: (*domain).to_string(),
                name: (*name).to_string(),
                org: String::new(),
            },
            tail,
        ),
        _ => {
            return Err(invalid(
                "must name a project, domain, execution and what to read",
            ))
        }
    };
    let target =
        match tail {
            [io] | [io, _] if Io::parse(io).is_some() => {
                let io = Io::parse(io).ok_or_else(|| invalid("has no i/o part"))?;
                Target::Execution(io, tail.get(1).copied())
            }
            [node, "d"] => Target::Deck(node),
            [node, io] | [node, io, _] if Io::parse(io).is_some() => {
                let io = Io::parse(io).ok_or_else(|| invalid("has no i/o part"))?;
                Target::Node(node, io, tail.get(2).copied())
            }
            _ => return Err(invalid(
                "is not of a served form: <execution>/i|o[/name], <execution>/<node>/i|o[/name] \
                 or <execution>/<node>/d (task attempts are not served)",
            )),
        };
    Ok((exec, target))
}

/// The whole map, or the one literal `name` of it.
fn select(map: LiteralMap, name: Option<&str>, what: &str) -> AdminResult<Data> {
    match name {
        None => Ok(Data::LiteralMap(map)),
        Some(name) => map
            .literals
            .get(name)
            .cloned()
            .map(Data::Literal)
            .ok_or_else(|| AdminError::not_found(format!("{what} have no value named {name:?}"))),
    }
}

/// The URI admin recorded for data it does not hold inline: the data response's blob first
/// (where admin puts offloaded literals), then `fallback` (a URI an event reported).
#[allow(deprecated)] // the blob fields are deprecated in flyteidl but still how URIs travel
fn recorded_uri(
    blob: Option<&UrlBlob>,
    fallback: impl FnOnce() -> Option<String>,
) -> Option<String> {
    blob.map(|b| b.url.clone())
        .filter(|url| !url.is_empty())
        .or_else(fallback)
        .filter(|url| !url.is_empty())
}

impl DataProxy {
    pub(crate) async fn get_data(&self, req: GetDataRequest) -> AdminResult<GetDataResponse> {
        let (exec, target) = parse(&req.flyte_url)?;
        let exec_name = format!("{}/{}/{}", exec.project, exec.domain, exec.name);
        let data = match target {
            Target::Execution(io, name) => {
                let what = format!("{} of execution {exec_name}", io.noun());
                let map = self.execution_data(exec, io, &what).await?;
                select(map, name, &what)?
            }
            Target::Node(node, io, name) => {
                let id = NodeExecutionIdentifier {
                    node_id: node.to_string(),
                    execution_id: Some(exec),
                };
                let what = format!("{} of node {node} of execution {exec_name}", io.noun());
                let map = self.node_data(id, io, &what).await?;
                select(map, name, &what)?
            }
            Target::Deck(node) => {
                let id = NodeExecutionIdentifier {
                    node_id: node.to_string(),
                    execution_id: Some(exec),
                };
                Data::PreSignedUrls(self.deck_urls(id, None).await?)
            }
        };
        Ok(GetDataResponse { data: Some(data) })
    }

    #[allow(deprecated)] // `outputs`/`inputs` blobs, see `recorded_uri`
    async fn execution_data(
        &self,
        exec: WorkflowExecutionIdentifier,
        io: Io,
        what: &str,
    ) -> AdminResult<LiteralMap> {
        let data = self
            .api
            .get_execution_data(WorkflowExecutionGetDataRequest {
                id: Some(exec.clone()),
            })
            .await?;
        let (inline, blob) = match io {
            Io::Inputs => (data.full_inputs, data.inputs),
            Io::Outputs => (data.full_outputs, data.outputs),
        };
        if let Some(map) = inline {
            return Ok(map);
        }
        let mut closure = None;
        if io == Io::Outputs && blob.as_ref().is_none_or(|b| b.url.is_empty()) {
            let execution = self
                .api
                .get_execution(WorkflowExecutionGetRequest { id: Some(exec) })
                .await?;
            closure = execution.closure;
        }
        let uri = recorded_uri(blob.as_ref(), || match closure?.output_result? {
            execution_closure::OutputResult::Outputs(LiteralMapBlob {
                data: Some(literal_map_blob::Data::Uri(uri)),
            }) => Some(uri),
            _ => None,
        });
        match uri {
            Some(uri) => self.read_literal_map(&uri, what).await,
            None => Err(AdminError::not_found(format!("{what} are not available"))),
        }
    }

    #[allow(deprecated)] // `outputs`/`inputs` blobs, see `recorded_uri`
    async fn node_data(
        &self,
        id: NodeExecutionIdentifier,
        io: Io,
        what: &str,
    ) -> AdminResult<LiteralMap> {
        let data = self
            .api
            .get_node_execution_data(NodeExecutionGetDataRequest {
                id: Some(id.clone()),
            })
            .await?;
        let (inline, blob) = match io {
            Io::Inputs => (data.full_inputs, data.inputs),
            Io::Outputs => (data.full_outputs, data.outputs),
        };
        if let Some(map) = inline {
            return Ok(map);
        }
        let mut node = None;
        if blob.as_ref().is_none_or(|b| b.url.is_empty()) {
            node = Some(
                self.api
                    .get_node_execution(NodeExecutionGetRequest { id: Some(id) })
                    .await?,
            );
        }
        let uri = recorded_uri(blob.as_ref(), || {
            let node = node?;
            match io {
                Io::Inputs => Some(node.input_uri),
                Io::Outputs => match node.closure?.output_result? {
                    node_execution_closure::OutputResult::OutputUri(uri) => Some(uri),
                    _ => None,
                },
            }
        });
        match uri {
            Some(uri) => self.read_literal_map(&uri, what).await,
            None => Err(AdminError::not_found(format!("{what} are not available"))),
        }
    }

    /// Reads a literal map admin knows only by URI, from the configured storage.
    async fn read_literal_map(&self, uri: &str, what: &str) -> AdminResult<LiteralMap> {
        let storage = &self.config.storage;
        let key = data_object(storage, uri).map_err(|e| match AdminError::from(e) {
            AdminError::InvalidArgument(why) => {
                AdminError::FailedPrecondition(format!("{what} are not readable: {why}"))
            }
            other => other,
        })?;
        let size = storage.head(&key).await.map_err(storage_error)?;
        let missing = || {
            AdminError::not_found(format!(
                "{what} are recorded at {uri}, which does not exist"
            ))
        };
        match size {
            None => return Err(missing()),
            Some(size) if size > MAX_LITERAL_BYTES => {
                return Err(AdminError::FailedPrecondition(format!(
                    "{what} at {uri} are {size} bytes, more than GetData returns \
                     ({MAX_LITERAL_BYTES}); read them from the storage directly"
                )))
            }
            Some(_) => {}
        }
        let bytes = storage
            .get(&key)
            .await
            .map_err(storage_error)?
            .ok_or_else(missing)?;
        LiteralMap::decode(bytes)
            .map_err(|e| AdminError::Internal(format!("{what} at {uri} are not a LiteralMap: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_served_forms() {
        let (exec, t) = parse("flyte://v1/p/d/e/o").unwrap();
        assert_eq!((exec.project.as_str(), exec.name.as_str()), ("p", "e"));
        assert_eq!(t, Target::Execution(Io::Outputs, None));
        assert_eq!(
            parse("flyte://v1/p/d/e/i/x").unwrap().1,
            Target::Execution(Io::Inputs, Some("x"))
        );
        assert_eq!(
            parse("flyte://v1/p/d/e/n0/o/o0").unwrap().1,
            Target::Node("n0", Io::Outputs, Some("o0"))
        );
        assert_eq!(
            parse("flyte://v1/p/d/e/n0/d").unwrap().1,
            Target::Deck("n0")
        );
        for bad in [
            "s3://b/k",
            "flyte://v1/p/d/e",
            "flyte://v1/p/d/e/n0/0/o",
            "flyte://v1/p//e/o",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
