//! A small SQL builder: text plus positional parameters (`$1`, `$2`, ...), which both SQLite and
//! PostgreSQL accept through sqlx's Any driver. Column names only ever come from `'static`
//! field tables, never from requests; request values are always bound.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use crate::list::{Filter, FilterOp, ListParams};

/// A bound value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Self::Text(s.to_string())
    }
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl From<i64> for Param {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<Vec<u8>> for Param {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

#[derive(Default)]
pub struct Sql {
    text: String,
    params: Vec<Param>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Param>) -> &mut Self {
        self.params.push(value.into());
        self.text.push('$');
        self.text.push_str(&self.params.len().to_string());
        self
    }

    /// Appends ` AND column op value` for each filter of `list`, then the order and the page.
    /// `tiebreak` (the key columns) keeps pages stable when sort values are equal.
    pub fn push_list(&mut self, list: &ListParams, tiebreak: &str) -> &mut Self {
        self.push_filters(&list.filters)
            .push_order_page(list, tiebreak)
    }

    /// Appends the order and the page of `list` (not its filters: a caller that places them
    /// itself, e.g. some in a subquery, writes them with [`Sql::push_filters`]).
    pub fn push_order_page(&mut self, list: &ListParams, tiebreak: &str) -> &mut Self {
        self.push(" ORDER BY ")
            .push(list.sort_field.column)
            .push(if list.ascending { " ASC, " } else { " DESC, " })
            .push(tiebreak);
        self.push(" LIMIT ").bind(i64::from(list.limit));
        // Offsets beyond i64 cannot address a row anyway.
        self.push(" OFFSET ")
            .bind(i64::try_from(list.offset).unwrap_or(i64::MAX))
    }

    /// Appends ` AND column op value` for each filter (a list's filters on another table go
    /// into a subquery this way).
    pub fn push_filters<'f>(&mut self, filters: impl IntoIterator<Item = &'f Filter>) -> &mut Self {
        for f in filters {
            self.push(" AND ").push(f.field.column);
            match f.op {
                FilterOp::ValueIn | FilterOp::ValueNotIn => {
                    self.push(if f.op == FilterOp::ValueIn {
                        " IN ("
                    } else {
                        " NOT IN ("
                    });
                    for (i, v) in f.values.iter().enumerate() {
                        if i > 0 {
                            self.push(", ");
                        }
                        self.bind(v.clone());
                    }
                    self.push(")");
                }
                FilterOp::Contains => {
                    let needle = match f.values.first() {
                        Some(Param::Text(t)) => escape_like(t),
                        _ => String::new(),
                    };
                    self.push(" LIKE ").bind(format!("%{needle}%"));
                    self.push(" ESCAPE '\\'");
                }
                op => {
                    self.push(match op {
                        FilterOp::Eq => " = ",
                        FilterOp::Ne => " <> ",
                        FilterOp::Gt => " > ",
                        FilterOp::Gte => " >= ",
                        FilterOp::Lt => " < ",
                        _ => " <= ",
                    });
                    if let Some(v) = f.values.first() {
                        self.bind(v.clone());
                    }
                }
            }
        }
        self
    }

    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for p in &self.params {
            q = match p {
                Param::Text(t) => q.bind(t.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Bytes(b) => q.bind(b.clone()),
            };
        }
        q
    }
}

/// `%` and `_` in a `contains()` value match themselves, as they do in flyteadmin's ILIKE use.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
