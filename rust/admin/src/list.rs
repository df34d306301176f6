//! List requests the flyteadmin way: Flyte's filter syntax (`eq(phase,SUCCEEDED)+gte(created_at,
//! 2024-01-01T00:00:00Z)`), `sort_by`, `limit` and a pagination token that is a stringified offset.
//!
//! Filters are checked against the fields a list exposes before any SQL is built, so a typo in a
//! field name or a value of the wrong kind is an `InvalidArgument` naming the culprit.

use alula_idl::flyteidl::admin::{sort::Direction, Sort};
use alula_idl::flyteidl::core::workflow_execution::Phase;
use alula_idl::flyteidl::core::{node_execution, task_execution};

use crate::error::quote;
use crate::store::query::Param;

/// How a filter value is read before it is compared with the column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    /// RFC 3339 in filters, microseconds since the epoch in the column.
    Timestamp,
    Integer,
    /// A `WorkflowExecution.Phase` name such as `SUCCEEDED`.
    WorkflowPhase,
    /// A `NodeExecution.Phase` name.
    NodePhase,
    /// A `TaskExecution.Phase` name.
    TaskPhase,
}

/// A field a list can filter and sort on, and the column holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
}

/// The fields of one list RPC. `entity` is the prefix clients may put before a field of the
/// listed entity itself (`execution.phase` on ListExecutions, `task.name` on ListTasks).
#[derive(Debug)]
pub struct FieldSet {
    pub entity: &'static str,
    pub fields: &'static [Field],
    pub default_sort: &'static str,
    pub default_ascending: bool,
}

impl FieldSet {
    fn find(&self, key: &str) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        let own = key
            .strip_prefix(self.entity)
            .and_then(|rest| rest.strip_prefix('.'));
        fields
            .iter()
            .find(|f| f.name == key)
            .or_else(|| own.and_then(|k| fields.iter().find(|f| f.name == k)))
    }

    fn names(&self) -> String {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
        names.join(", ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    ValueIn,
    ValueNotIn,
}

impl FilterOp {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "gte" => Self::Gte,
            "lt" => Self::Lt,
            "lte" => Self::Lte,
            "contains" => Self::Contains,
            "value_in" => Self::ValueIn,
            "value_not_in" => Self::ValueNotIn,
            _ => return None,
        })
    }
}

/// One checked filter term; `values` has one element except for the set operators.
#[derive(Debug)]
pub struct Filter {
    pub op: FilterOp,
    pub field: &'static Field,
    pub values: Vec<Param>,
}

/// What a list request asks for, checked.
#[derive(Debug)]
pub struct ListParams {
    pub filters: Vec<Filter>,
    pub sort_field: &'static Field,
    pub ascending: bool,
    pub limit: u32,
    pub offset: u64,
}

impl ListParams {
    /// Checks a request's `filters`, `sort_by`, `limit` and `token` against `fields`.
    pub fn parse(
        fields: &FieldSet,
        filters: &str,
        sort_by: Option<&Sort>,
        limit: u32,
        token: &str,
    ) -> Result<Self, String> {
        if limit == 0 {
            return Err("limit must be greater than 0".to_string());
        }
        let offset = if token.is_empty() {
            0
        } else {
            token.parse::<u64>().map_err(|_| {
                format!("invalid pagination token {token:?}: expected the token a previous page returned")
            })?
        };
        let filters = parse_filters(fields, filters)?;
        let (sort_field, ascending) = match sort_by.filter(|s| !s.key.is_empty()) {
            Some(sort) => {
                let field = fields.find(&sort.key).ok_or_else(|| {
                    format!(
                        "cannot sort by unknown field {:?}; fields: {}",
                        sort.key,
                        fields.names()
                    )
                })?;
                (field, sort.direction == Direction::Ascending as i32)
            }
            None => {
                let field = fields
                    .find(fields.default_sort)
                    .ok_or_else(|| format!("no default sort field {}", fields.default_sort))?;
                (field, fields.default_ascending)
            }
        };
        Ok(Self {
            filters,
            sort_field,
            ascending,
            limit,
            offset,
        })
    }

    /// The token of the page after one that returned `returned` rows; empty on the last page.
    pub fn next_token(&self, returned: usize) -> String {
        if returned < self.limit as usize {
            String::new()
        } else {
            (self.offset + returned as u64).to_string()
        }
    }
}

/// Parses `fn(field,value)+fn(field,value)...`; set operators take `a;b;c`.
pub fn parse_filters(fields: &FieldSet, text: &str) -> Result<Vec<Filter>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('+')
        .map(|term| parse_term(fields, term.trim()))
        .collect()
}

fn parse_term(fields: &FieldSet, term: &str) -> Result<Filter, String> {
    let malformed = || {
        format!(
            "malformed filter {}: expected fn(field,value), e.g. eq(name,x)",
            quote(term)
        )
    };
    let (op_name, rest) = term.split_once('(').ok_or_else(malformed)?;
    let args = rest.strip_suffix(')').ok_or_else(malformed)?;
    let (key, value) = args.split_once(',').ok_or_else(malformed)?;
    let op = FilterOp::parse(op_name.trim()).ok_or_else(|| {
        format!(
            "unknown filter function {} in {}; use eq, ne, gt, gte, lt, lte, contains, value_in or value_not_in",
            quote(op_name.trim()),
            quote(term)
        )
    })?;
    let key = key.trim();
    let field = fields.find(key).ok_or_else(|| {
        format!(
            "cannot filter {} on unknown field {}; fields: {}",
            fields.entity,
            quote(key),
            fields.names()
        )
    })?;
    if op == FilterOp::Contains && field.kind != FieldKind::Text {
        return Err(format!(
            "contains() applies to text fields only, not {}",
            quote(key)
        ));
    }
    let raw: Vec<&str> = match op {
        FilterOp::ValueIn | FilterOp::ValueNotIn => value.split(';').map(str::trim).collect(),
        _ => vec![value.trim()],
    };
    let values = raw
        .into_iter()
        .map(|v| typed_value(field, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Filter { op, field, values })
}

fn typed_value(field: &Field, value: &str) -> Result<Param, String> {
    match field.kind {
        FieldKind::Text => Ok(Param::Text(value.to_string())),
        FieldKind::Integer => value
            .parse::<i64>()
            .map(Param::Int)
            .map_err(|_| format!("filter on {} needs an integer, got {}", field.name, quote(value))),
        FieldKind::Timestamp => chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| Param::Int(t.timestamp_micros()))
            .map_err(|e| {
                format!(
                    "filter on {} needs an RFC 3339 timestamp such as 2024-01-01T00:00:00Z, got {}: {e}",
                    field.name,
                    quote(value)
                )
            }),
        FieldKind::WorkflowPhase => Phase::from_str_name(value)
            .map(|p| Param::Text(p.as_str_name().to_string()))
            .ok_or_else(|| {
                format!(
                    "unknown execution phase {}; phases: UNDEFINED, QUEUED, RUNNING, SUCCEEDING, SUCCEEDED, FAILING, FAILED, ABORTED, TIMED_OUT, ABORTING",
                    quote(value)
                )
            }),
        FieldKind::NodePhase => node_execution::Phase::from_str_name(value)
            .map(|p| Param::Text(p.as_str_name().to_string()))
            .ok_or_else(|| {
                format!(
                    "unknown node execution phase {}; phases: UNDEFINED, QUEUED, RUNNING, SUCCEEDED, FAILING, FAILED, ABORTED, SKIPPED, TIMED_OUT, DYNAMIC_RUNNING, RECOVERED",
                    quote(value)
                )
            }),
        FieldKind::TaskPhase => task_execution::Phase::from_str_name(value)
            .map(|p| Param::Text(p.as_str_name().to_string()))
            .ok_or_else(|| {
                format!(
                    "unknown task execution phase {}; phases: UNDEFINED, QUEUED, RUNNING, SUCCEEDED, ABORTED, FAILED, INITIALIZING, WAITING_FOR_RESOURCES, RETRYABLE_FAILED",
                    quote(value)
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FIELDS: FieldSet = FieldSet {
        entity: "execution",
        fields: &[
            Field {
                name: "name",
                column: "name",
                kind: FieldKind::Text,
            },
            Field {
                name: "phase",
                column: "phase",
                kind: FieldKind::WorkflowPhase,
            },
            Field {
                name: "created_at",
                column: "created_at",
                kind: FieldKind::Timestamp,
            },
        ],
        default_sort: "created_at",
        default_ascending: false,
    };

    #[test]
    fn parses_terms_joined_by_plus() {
        let f = parse_filters(
            &FIELDS,
            "eq(execution.phase,SUCCEEDED)+gte(created_at,2024-01-01T00:00:00Z)+value_in(name,a;b)",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].op, FilterOp::Eq);
        assert_eq!(f[0].values, vec![Param::Text("SUCCEEDED".into())]);
        assert_eq!(f[1].values, vec![Param::Int(1_704_067_200_000_000)]);
        assert_eq!(
            f[2].values,
            vec![Param::Text("a".into()), Param::Text("b".into())]
        );
    }

    #[test]
    fn rejects_unknown_fields_functions_and_values() {
        let err = parse_filters(&FIELDS, "eq(colour,red)").unwrap_err();
        assert!(err.contains("\"colour\"") && err.contains("phase"), "{err}");
        let err = parse_filters(&FIELDS, "like(name,x)").unwrap_err();
        assert!(err.contains("\"like\""), "{err}");
        let err = parse_filters(&FIELDS, "eq(phase,DONE)").unwrap_err();
        assert!(err.contains("\"DONE\""), "{err}");
        let err = parse_filters(&FIELDS, "gt(created_at,yesterday)").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        let err = parse_filters(&FIELDS, "eq(name)").unwrap_err();
        assert!(err.contains("malformed"), "{err}");
    }

    #[test]
    fn tokens_are_offsets() {
        let p = ListParams::parse(&FIELDS, "", None, 2, "4").unwrap();
        assert_eq!(p.offset, 4);
        assert_eq!(p.next_token(2), "6");
        assert_eq!(p.next_token(1), "");
        assert!(ListParams::parse(&FIELDS, "", None, 2, "abc").is_err());
        assert!(ListParams::parse(&FIELDS, "", None, 0, "").is_err());
    }
}
