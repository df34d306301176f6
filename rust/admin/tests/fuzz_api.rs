//! Fuzzing what strangers can send to admin's services: every request type of every served
//! service (found in the descriptor set, so a new RPC is fuzzed by itself), decoded and handed
//! to its trait method in-process on SQLite; and Flyte's filter syntax, parsed alone and run
//! through the list RPCs. No input may panic or hang, and every refusal carries a precise code:
//! never UNKNOWN (flytekit starts an auth flow on it) nor INTERNAL (a fault of ours).
//!
//! Case counts: `ALULA_FUZZ_CASES`, seed: `ALULA_FUZZ_SEED` (see `rust/fuzz/README.md`).
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;
mod fuzz_support;

use std::sync::OnceLock;
use std::time::Duration;

use alula_admin::list::parse_filters;
use alula_admin::rest::snake_case;
use alula_admin::store::{EXECUTION_FIELDS, NAME_FIELDS, SIGNAL_FIELDS};
use alula_fuzz::{config, mutate, Entropy, Schema};
use alula_idl::flyteidl::admin::{NamedEntityIdentifier, ResourceListRequest, Sort};
use fuzz_support::{call, fixture, served, Outcome};
use proptest::prelude::*;
use prost::Message;
use tonic::Code;

/// An admin call on in-memory SQLite takes milliseconds in a debug build.
const LIMIT: Duration = Duration::from_secs(20);

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(Schema::load)
}

/// (service, RPC in snake case, request type) of every served RPC.
fn rpcs() -> &'static [(String, String, String)] {
    static RPCS: OnceLock<Vec<(String, String, String)>> = OnceLock::new();
    RPCS.get_or_init(|| {
        served()
            .flat_map(|name| {
                let service = schema()
                    .service(name)
                    .unwrap_or_else(|| panic!("{name} is not in the descriptor set"));
                service
                    .methods
                    .iter()
                    .map(move |m| (name.to_string(), snake_case(&m.name), m.input.clone()))
            })
            .collect()
    })
}

/// Runs one request against the shared admin and checks the answer's code.
fn check_call(service: &str, rpc: &str, bytes: Vec<u8>) {
    let f = fixture();
    let handlers = (f.api.clone(), f.data_proxy.clone());
    let (service_owned, rpc_owned) = (service.to_string(), rpc.to_string());
    let outcome = f.runtime.block_on(async move {
        let task =
            tokio::spawn(async move { call(handlers, &service_owned, &rpc_owned, &bytes).await });
        tokio::time::timeout(LIMIT, task).await
    });
    let outcome = match outcome {
        Err(_) => panic!("{service}.{rpc} took longer than {LIMIT:?}: a hang"),
        Ok(Err(join)) => panic!("{service}.{rpc} panicked: {join}"),
        Ok(Ok(outcome)) => outcome,
    };
    if std::env::var_os("ALULA_FUZZ_TRACE").is_some() {
        // What the cases reach, for tuning the generator: `... | sort | uniq -c`.
        let code = match &outcome {
            Outcome::Answered(Err(status)) => format!("{:?} {}", status.code(), status.message()),
            other => format!("{other:?}"),
        };
        eprintln!("trace {service}.{rpc} {code}");
    }
    match outcome {
        Outcome::NotInTable => panic!("{service}.{rpc} is missing from fuzz_support's table"),
        Outcome::Undecodable | Outcome::Answered(Ok(())) => {}
        Outcome::Answered(Err(status)) => assert!(
            !matches!(status.code(), Code::Unknown | Code::Internal),
            "{service}.{rpc} answered {:?}: {}",
            status.code(),
            status.message()
        ),
    }
}

#[test]
fn every_served_rpc_is_dispatched() {
    assert!(rpcs().len() >= 60, "only {} RPCs", rpcs().len());
    for (service, rpc, _) in rpcs() {
        // The empty request: every field at its default.
        check_call(service, rpc, Vec::new());
    }
}

proptest! {
    #![proptest_config(config(1200))]

    /// Random valid requests of every served RPC (sometimes with damaged bytes).
    #[test]
    fn random_requests_get_precise_answers(
        index in any::<prop::sample::Index>(),
        entropy in prop::collection::vec(any::<u8>(), 128..1024),
        corrupt in prop::bool::weighted(0.2),
    ) {
        let (service, rpc, input) = index.get(rpcs());
        let mut e = Entropy::new(&entropy);
        let mut bytes = schema().generate(input, &mut e);
        if corrupt {
            mutate(&mut bytes, &mut e);
        }
        check_call(service, rpc, bytes);
    }
}

// ---- filters -------------------------------------------------------------------------------

const FUNCTIONS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "value_in",
    "value_not_in",
    "like",
    "",
];
const FIELDS: &[&str] = &[
    "phase",
    "name",
    "project",
    "domain",
    "created_at",
    "updated_at",
    "mode",
    "version",
    "execution.phase",
    "execution.name",
    "task.name",
    "workflow.version",
    "launch_plan.name",
    "state",
    "duration",
    "",
    "é",
];
const VALUES: &[&str] = &[
    "RUNNING",
    "SUCCEEDED",
    "x",
    "t0",
    "wf",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00+23:59",
    "-262143-01-01T00:00:00Z",
    "9999-12-31T23:59:60Z",
    "1",
    "-1",
    "9223372036854775808",
    "a;b;c",
    "RUNNING;FAILED",
    ";",
    "%",
    "_",
    "'",
    "\"",
    "\\",
    "é\u{0}🦀",
    "",
];

/// A filter text from Flyte's grammar, `fn(field,value)` terms joined by `+`, with noise.
fn filter_text() -> impl Strategy<Value = String> {
    let term = (
        prop::sample::select(FUNCTIONS),
        prop::sample::select(FIELDS),
        prop::sample::select(VALUES),
        prop::option::weighted(0.15, "\\PC{0,8}"),
    )
        .prop_map(|(f, k, v, noise)| match noise {
            Some(noise) if noise.len() % 3 == 0 => format!("{f}({k}{noise},{v})"),
            Some(noise) if noise.len() % 3 == 1 => format!("{f}({k},{v}{noise}"),
            Some(noise) => format!("{noise}{f}({k},{v})"),
            None => format!("{f}({k},{v})"),
        });
    prop::collection::vec(term, 0..5).prop_map(|terms| terms.join("+"))
}

proptest! {
    #![proptest_config(config(3000))]

    /// The parser alone, on grammar-shaped text and on any text at all.
    #[test]
    fn filters_parse_or_fail_with_a_message(
        grammar in filter_text(),
        noise in "\\PC{0,64}",
        repeat in 0usize..3,
    ) {
        // Long inputs: thousands of terms (a URL's query can be long) must stay linear.
        let long = grammar.repeat(1 + repeat * 400);
        for text in [&grammar, &noise, &long] {
            for fields in [&EXECUTION_FIELDS, &NAME_FIELDS, &SIGNAL_FIELDS] {
                if let Err(message) = parse_filters(fields, text) {
                    prop_assert!(!message.is_empty());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Filters, sort keys and tokens through the list RPCs: SQL is built only from checked
    /// fields, so any text is INVALID_ARGUMENT or a page, never a database error.
    #[test]
    fn list_requests_with_any_filter_get_precise_answers(
        filters in filter_text(),
        sort_key in prop::sample::select(FIELDS),
        token in prop::sample::select(&["", "0", "5", "-1", "18446744073709551616", "x"][..]),
        limit in prop::sample::select(&[0u32, 1, 100, u32::MAX][..]),
        rpc in prop::sample::select(&["list_executions", "list_tasks", "list_workflows", "list_launch_plans", "list_node_executions"][..]),
    ) {
        let request = ResourceListRequest {
            id: Some(NamedEntityIdentifier {
                project: "flytesnacks".into(),
                domain: "development".into(),
                name: "wf".into(),
                org: String::new(),
            }),
            limit,
            token: token.to_string(),
            filters,
            sort_by: Some(Sort { key: sort_key.to_string(), direction: 0 }),
        };
        let bytes = if rpc == "list_node_executions" {
            // Its request names the execution instead of an entity.
            alula_idl::flyteidl::admin::NodeExecutionListRequest {
                workflow_execution_id: Some(alula_idl::flyteidl::core::WorkflowExecutionIdentifier {
                    project: "flytesnacks".into(),
                    domain: "development".into(),
                    name: "x".into(),
                    org: String::new(),
                }),
                limit: request.limit,
                token: request.token,
                filters: request.filters,
                sort_by: request.sort_by,
                unique_parent_id: String::new(),
            }
            .encode_to_vec()
        } else {
            request.encode_to_vec()
        };
        check_call("flyteidl.service.AdminService", rpc, bytes);
    }
}
