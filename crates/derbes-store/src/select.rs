//! One builder for the listing queries (requests, outbox events, notices,
//! breaches): conditions joined by AND, each with its own numbered
//! placeholder, bound in order, then an ORDER BY and a LIMIT.

use sqlx::any::AnyRow;
use sqlx::AnyPool;

use crate::StoreError;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// `SELECT … WHERE 1 = 1 AND …` under construction.
#[derive(Debug)]
pub(crate) struct Select {
    sql: String,
    binds: Vec<Bind>,
}

impl Select {
    /// `SELECT {columns} FROM {table} WHERE 1 = 1`.
    pub(crate) fn from(table: &str, columns: &str) -> Select {
        Select {
            sql: format!("SELECT {columns} FROM {table} WHERE 1 = 1"),
            binds: Vec::new(),
        }
    }

    /// ` AND {condition} $n` with `value`, when there is one. `condition`
    /// ends with its operator: `"state ="`, `"due_at <"`.
    pub(crate) fn and(&mut self, condition: &str, value: Option<Bind>) -> &mut Select {
        if let Some(v) = value {
            self.binds.push(v);
            self.sql
                .push_str(&format!(" AND {condition} ${}", self.binds.len()));
        }
        self
    }

    /// ` AND {condition}` with no value, when `on`.
    pub(crate) fn and_if(&mut self, on: bool, condition: &str) -> &mut Select {
        if on {
            self.sql.push_str(" AND ");
            self.sql.push_str(condition);
        }
        self
    }

    /// Run it, ordered by `order`, at most `limit` (1 to 10,000) rows.
    pub(crate) async fn fetch(
        &mut self,
        pool: &AnyPool,
        order: &str,
        limit: i64,
    ) -> Result<Vec<AnyRow>, StoreError> {
        self.binds.push(Bind::Int(limit.clamp(1, 10_000)));
        let sql = format!("{} ORDER BY {order} LIMIT ${}", self.sql, self.binds.len());
        let mut q = sqlx::query(&sql);
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(n) => q.bind(*n),
            };
        }
        Ok(q.fetch_all(pool).await?)
    }
}

pub(crate) fn text(s: impl ToString) -> Bind {
    Bind::Text(s.to_string())
}

pub(crate) fn time(t: chrono::DateTime<chrono::Utc>) -> Bind {
    Bind::Int(crate::us(t))
}
