//! Keyset pagination of the lists: a page continues just after the row the previous page
//! ended with, compared on the list's own order (`(created_at, pos)`, `(created_at, id)`,
//! ...), never by offset. Rows inserted meanwhile therefore neither shift a page nor appear
//! twice: a row newer than the cursor in a newest-first list belongs to pages already read.
//! The caller names the row by its id; a cursor naming no row is [`StoreError::UnknownCursor`].

use crate::codec::{Arg, Sql};
use crate::{Result, StoreError, Tx};

/// Where a list continues.
pub(crate) struct After {
    /// The table listed, and what the error calls its rows.
    pub table: &'static str,
    pub what: &'static str,
    /// The list's order, as comma-separated columns (`created_at, pos`).
    pub order: &'static str,
    /// `<` for a list in descending order, `>` for ascending.
    pub cmp: &'static str,
    /// The columns naming the row the previous page ended with, and their values.
    pub row: Vec<(&'static str, Arg)>,
}

impl Tx {
    /// Add to `sql` (a `SELECT ... FROM <table> WHERE ...` of the list) the condition "after
    /// the row `after` names", after checking that the row exists.
    pub(crate) async fn continue_after(&mut self, sql: &mut Sql, after: After) -> Result<()> {
        let mut check = Sql::new(&format!("SELECT 1 AS one FROM {} WHERE 1 = 1", after.table));
        for (col, v) in &after.row {
            let p = check.arg(v.clone());
            check.push(&format!(" AND {col} = {p}"));
        }
        if check.query().fetch_optional(self.conn()).await?.is_none() {
            let named: Vec<String> = after.row.iter().map(|(_, v)| v.to_string()).collect();
            return Err(StoreError::UnknownCursor {
                what: after.what.to_string(),
                id: named.join(" "),
            });
        }
        let mut inner = format!("SELECT {} FROM {} WHERE 1 = 1", after.order, after.table);
        for (col, v) in after.row {
            let p = sql.arg(v);
            inner.push_str(&format!(" AND {col} = {p}"));
        }
        sql.push(&format!(" AND ({}) {} ({inner})", after.order, after.cmp));
        Ok(())
    }
}
