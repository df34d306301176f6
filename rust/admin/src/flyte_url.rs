//! `DataProxyService.GetData`: resolves `flyte://v1/<project>/<domain>/<execution>/...` URIs
//! to data held by admin.
//!
//! Forms served:
//! - `.../<execution>/i` and `.../<execution>/o`: an execution's inputs or outputs (an Alula
//!   addition: flyteadmin only serves node-level URIs), `/<name>` appended for one literal;
//! - `.../<execution>/<node>/i|o[/<name>]`: a node execution's inputs or outputs;
//! - `.../<execution>/<node>/d`: signed URLs of the node's deck.
//!
//! A node named `i` or `o` is shadowed by the execution-level form; Flyte's node ids are
//! `n0`, `n1`, ... so that costs nothing in practice.

use alula_idl::flyteidl::admin::{NodeExecutionGetDataRequest, WorkflowExecutionGetDataRequest};
use alula_idl::flyteidl::core::{LiteralMap, NodeExecutionIdentifier, WorkflowExecutionIdentifier};
use alula_idl::flyteidl::service::{get_data_response::Data, GetDataRequest, GetDataResponse};

use crate::dataproxy::DataProxy;
use crate::error::{AdminError, AdminResult};

const PREFIX: &str = "flyte://v1/";

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

impl DataProxy {
    pub(crate) async fn get_data(&self, req: GetDataRequest) -> AdminResult<GetDataResponse> {
        let (exec, target) = parse(&req.flyte_url)?;
        let exec_name = format!("{}/{}/{}", exec.project, exec.domain, exec.name);
        let data = match target {
            Target::Execution(io, name) => {
                let data = self
                    .api
                    .get_execution_data(WorkflowExecutionGetDataRequest { id: Some(exec) })
                    .await?;
                let what = format!("{} of execution {exec_name}", io.noun());
                let map = match io {
                    Io::Inputs => data.full_inputs,
                    Io::Outputs => data.full_outputs,
                };
                let map =
                    map.ok_or_else(|| AdminError::not_found(format!("{what} are not available")))?;
                select(map, name, &what)?
            }
            Target::Node(node, io, name) => {
                let id = NodeExecutionIdentifier {
                    node_id: node.to_string(),
                    execution_id: Some(exec),
                };
                let data = self
                    .api
                    .get_node_execution_data(NodeExecutionGetDataRequest { id: Some(id) })
                    .await?;
                let what = format!("{} of node {node} of execution {exec_name}", io.noun());
                let map = match io {
                    Io::Inputs => data.full_inputs,
                    Io::Outputs => data.full_outputs,
                };
                let map =
                    map.ok_or_else(|| AdminError::not_found(format!("{what} are not available")))?;
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
