//! The REST routes of Flyte's services, read from the `google.api.http` options in
//! [`alula_idl::FILE_DESCRIPTOR_SET`], plus the message descriptors needed to give path and
//! query values their JSON types.

use std::collections::{BTreeSet, HashMap};

use alula_idl::google::api::{http_rule::Pattern, HttpRule};
use alula_idl::wkt::{field_descriptor_proto::Type, DescriptorProto, FieldDescriptorProto};
use axum::http::Method;
use prost::Message;

/// Where Flyte's services put their REST API; a few auth discovery routes live outside it.
pub const API_PREFIX: &str = "/api/v1";

/// The services whose HTTP bindings the gateway serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Admin,
    DataProxy,
    Signal,
    Identity,
    AuthMetadata,
    AgentMetadata,
}

impl Service {
    pub const ALL: [Self; 6] = [
        Self::Admin,
        Self::DataProxy,
        Self::Signal,
        Self::Identity,
        Self::AuthMetadata,
        Self::AgentMetadata,
    ];

    /// The full protobuf name.
    pub fn full_name(self) -> &'static str {
        match self {
            Self::Admin => "flyteidl.service.AdminService",
            Self::DataProxy => "flyteidl.service.DataProxyService",
            Self::Signal => "flyteidl.service.SignalService",
            Self::Identity => "flyteidl.service.IdentityService",
            Self::AuthMetadata => "flyteidl.service.AuthMetadataService",
            Self::AgentMetadata => "flyteidl.service.AgentMetadataService",
        }
    }

    /// The service of a full protobuf name (`None` for one admin does not serve).
    pub fn named(full_name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.full_name() == full_name)
    }
}

// The generated `MethodOptions` drops extensions, so the service part of the descriptor set is
// decoded again with just the fields routing needs, `google.api.http` included.
#[derive(Clone, PartialEq, Message)]
struct Files {
    #[prost(message, repeated, tag = "1")]
    file: Vec<File>,
}

#[derive(Clone, PartialEq, Message)]
struct File {
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceDescriptor>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceDescriptor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    method: Vec<MethodDescriptor>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodDescriptor {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    input_type: String,
    #[prost(string, tag = "3")]
    output_type: String,
    #[prost(message, optional, tag = "4")]
    options: Option<MethodOptions>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodOptions {
    #[prost(message, optional, tag = "72295728")]
    http: Option<HttpRule>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("the embedded descriptor set cannot be decoded: {0}")]
    Descriptor(#[from] prost::DecodeError),
    #[error("{0} has no google.api.http routes in the descriptor set")]
    NoRoutes(&'static str),
    #[error("the REST template {template:?} of {rpc} is not a path axum can route")]
    Template { template: String, rpc: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{id.project}`: one path segment filling a (nested) request field.
    Field(Vec<String>),
}

/// One HTTP binding of an RPC.
#[derive(Clone, Debug)]
pub struct Route {
    verb: Method,
    segments: Vec<Segment>,
    /// `*` (the whole request), a field name, or empty (no body: query parameters instead).
    pub body: String,
    pub service: Service,
    /// The RPC in snake case (`get_task`), as the dispatcher names it.
    pub rpc: String,
    /// Full names without the leading dot (`flyteidl.admin.ObjectGetRequest`).
    pub input: String,
    pub output: String,
}

impl Route {
    /// The path template as the proto spells it, for messages.
    fn template(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => format!("/{l}"),
                Segment::Field(f) => format!("/{{{}}}", f.join(".")),
            })
            .collect()
    }
}

/// The field values a matched path assigns, by field path.
pub type PathValues = Vec<(Vec<String>, String)>;

/// `CreateTask` → `create_task`, as tonic names trait methods.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `%XX` escapes of a path segment (`None` for malformed ones or invalid UTF-8).
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .trim_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(field) => Segment::Field(field.split('.').map(String::from).collect()),
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect()
}

/// Every route and the message descriptors, loaded once at startup.
pub struct Routes {
    routes: Vec<Route>,
    messages: HashMap<String, DescriptorProto>,
}

impl Routes {
    pub fn load() -> Result<Self, RouteError> {
        let files = Files::decode(alula_idl::FILE_DESCRIPTOR_SET)?;
        let mut routes = Vec::new();
        for file in &files.file {
            for service in &file.service {
                let Some(kind) = Service::named(&format!("{}.{}", file.package, service.name))
                else {
                    continue;
                };
                for method in &service.method {
                    let Some(rule) = method.options.as_ref().and_then(|o| o.http.as_ref()) else {
                        continue;
                    };
                    for binding in std::iter::once(rule).chain(&rule.additional_bindings) {
                        let (verb, template) = match &binding.pattern {
                            Some(Pattern::Get(t)) => (Method::GET, t),
                            Some(Pattern::Put(t)) => (Method::PUT, t),
                            Some(Pattern::Post(t)) => (Method::POST, t),
                            Some(Pattern::Delete(t)) => (Method::DELETE, t),
                            Some(Pattern::Patch(t)) => (Method::PATCH, t),
                            Some(Pattern::Custom(_)) | None => continue,
                        };
                        routes.push(Route {
                            verb,
                            segments: parse_template(template),
                            body: binding.body.clone(),
                            service: kind,
                            rpc: snake_case(&method.name),
                            input: method.input_type.trim_start_matches('.').to_string(),
                            output: method.output_type.trim_start_matches('.').to_string(),
                        });
                    }
                }
            }
        }
        for service in Service::ALL {
            if !routes.iter().any(|r| r.service == service) {
                return Err(RouteError::NoRoutes(service.full_name()));
            }
        }
        let set = alula_idl::wkt::FileDescriptorSet::decode(alula_idl::FILE_DESCRIPTOR_SET)?;
        let mut messages = HashMap::new();
        for file in set.file {
            let package = file.package.unwrap_or_default();
            collect_messages(&package, file.message_type, &mut messages);
        }
        Ok(Self { routes, messages })
    }

    /// The route for `verb` and `path` and the values its fields take. When several templates
    /// match (`/tasks/org/{org}/...` and `/tasks/{project}/...`) the one with more literal
    /// segments wins, as gRPC-gateway's static-first matching does.
    pub fn find(&self, verb: &Method, path: &str) -> Option<(&Route, PathValues)> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.routes
            .iter()
            .filter(|r| r.verb == *verb && r.segments.len() == parts.len())
            .filter_map(|r| {
                let mut values = Vec::new();
                let mut literals = 0;
                for (segment, part) in r.segments.iter().zip(&parts) {
                    match segment {
                        Segment::Literal(l) if l == part => literals += 1,
                        Segment::Literal(_) => return None,
                        Segment::Field(_) if part.is_empty() => return None,
                        Segment::Field(f) => values.push((f.clone(), percent_decode(part)?)),
                    }
                }
                Some((literals, r, values))
            })
            .max_by_key(|(literals, _, _)| *literals)
            .map(|(_, r, values)| (r, values))
    }

    /// The paths to hand axum: one catch-all for `/api/v1`, so that an unknown path there still
    /// gets a JSON error, and each template outside it (`/me`, `/.well-known/...`) on its own,
    /// so the gateway claims nothing else of the HTTP port.
    pub fn axum_paths(&self) -> Result<BTreeSet<String>, RouteError> {
        let mut paths = BTreeSet::from([format!("{API_PREFIX}/{{*rest}}")]);
        for route in &self.routes {
            if route.template().starts_with(&format!("{API_PREFIX}/")) {
                continue;
            }
            let mut path = String::new();
            for (i, segment) in route.segments.iter().enumerate() {
                path.push('/');
                match segment {
                    Segment::Literal(l) if !l.contains(['{', '}', '*', ':']) => path.push_str(l),
                    Segment::Literal(_) => {
                        return Err(RouteError::Template {
                            template: route.template(),
                            rpc: route.rpc.clone(),
                        })
                    }
                    // The handler reads the values from the URI itself; axum only needs a name.
                    Segment::Field(_) => path.push_str(&format!("{{value{i}}}")),
                }
            }
            paths.insert(path);
        }
        Ok(paths)
    }

    /// The field of message `message` named `name` (proto or JSON name).
    pub fn field(&self, message: &str, name: &str) -> Option<&FieldDescriptorProto> {
        self.messages
            .get(message)?
            .field
            .iter()
            .find(|f| f.name.as_deref() == Some(name) || f.json_name.as_deref() == Some(name))
    }

    /// Whether any route serves `path` with another verb (405 rather than 404).
    pub fn has_path(&self, path: &str) -> bool {
        [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ]
        .iter()
        .any(|verb| self.find(verb, path).is_some())
    }
}

fn collect_messages(
    scope: &str,
    messages: Vec<DescriptorProto>,
    out: &mut HashMap<String, DescriptorProto>,
) {
    for mut message in messages {
        let name = format!("{scope}.{}", message.name.clone().unwrap_or_default());
        let nested = std::mem::take(&mut message.nested_type);
        collect_messages(&name, nested, out);
        out.insert(name, message);
    }
}

/// The JSON kind a path or query value must take for a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Enum,
    /// Strings, bytes (base64), every number type (proto3 JSON accepts numbers as strings) and
    /// the well-known messages whose JSON form is a string (`Timestamp`, `Duration`).
    Text,
}

pub fn kind_of(field: &FieldDescriptorProto) -> ValueKind {
    // Label is `optional` or `repeated` in proto3; only the type matters here.
    match field.r#type.and_then(|t| Type::try_from(t).ok()) {
        Some(Type::Bool) => ValueKind::Bool,
        Some(Type::Enum) => ValueKind::Enum,
        _ => ValueKind::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escaped_segments() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn static_segments_win_over_variables() {
        let routes = Routes::load().unwrap();
        let (route, values) = routes.find(&Method::GET, "/api/v1/tasks/p/d/n/v").unwrap();
        assert_eq!(route.rpc, "get_task");
        assert_eq!(
            values[0],
            (vec!["id".to_string(), "project".to_string()], "p".into())
        );
        let (route, _) = routes.find(&Method::GET, "/api/v1/version").unwrap();
        assert_eq!(route.rpc, "get_version");
        assert!(routes
            .find(&Method::GET, "/api/v1/tasks/p/d/n/v/x/y/z")
            .is_none());
    }

    #[test]
    fn every_service_is_routed() {
        let routes = Routes::load().unwrap();
        let cases = [
            (
                Method::POST,
                "/api/v1/dataproxy/artifact_urn",
                Service::DataProxy,
                "create_upload_location",
            ),
            (
                Method::GET,
                "/api/v1/dataproxy/artifact_urn",
                Service::DataProxy,
                "create_download_location",
            ),
            (Method::GET, "/api/v1/data", Service::DataProxy, "get_data"),
            (
                Method::GET,
                "/api/v1/signals/p/d/e",
                Service::Signal,
                "list_signals",
            ),
            (
                Method::POST,
                "/api/v1/signals",
                Service::Signal,
                "set_signal",
            ),
            (Method::GET, "/me", Service::Identity, "user_info"),
            (
                Method::GET,
                "/api/v1/agents",
                Service::AgentMetadata,
                "list_agents",
            ),
            (
                Method::GET,
                "/api/v1/agent/bq",
                Service::AgentMetadata,
                "get_agent",
            ),
            (
                Method::GET,
                "/config/v1/flyte_client",
                Service::AuthMetadata,
                "get_public_client_config",
            ),
            (
                Method::GET,
                "/.well-known/oauth-authorization-server",
                Service::AuthMetadata,
                "get_o_auth2_metadata",
            ),
        ];
        for (verb, path, service, rpc) in cases {
            let (route, _) = routes.find(&verb, path).unwrap();
            assert_eq!(
                (route.service, route.rpc.as_str()),
                (service, rpc),
                "{verb} {path}"
            );
        }
    }

    #[test]
    fn axum_gets_the_api_prefix_and_each_path_outside_it() {
        let paths = Routes::load().unwrap().axum_paths().unwrap();
        let expected: BTreeSet<String> = [
            "/api/v1/{*rest}",
            "/me",
            "/config/v1/flyte_client",
            "/.well-known/oauth-authorization-server",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(paths, expected);
    }
}
