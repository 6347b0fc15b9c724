//! The embedded SQL engine: SQLite (rusqlite, bundled) holding every managed table of a
//! workspace, name resolution for `catalog.schema.table`, and the `synthetic(N)` table
//! function.

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, params_from_iter};

use crate::results::{ColBuf as ResultBuf, ResultSet};

/// Column types the emulator stores and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColType {
    Int,
    Float,
    Text,
    Bool,
    Blob,
    Timestamp,
    Date,
}

impl ColType {
    /// The SQLite declared type (drives affinity and `decltype`).
    pub(crate) fn decl(self) -> &'static str {
        match self {
            ColType::Int => "BIGINT",
            ColType::Float => "DOUBLE",
            ColType::Text => "TEXT",
            ColType::Bool => "BOOLEAN",
            ColType::Blob => "BLOB",
            ColType::Timestamp => "TIMESTAMP",
            ColType::Date => "DATE",
        }
    }

    /// The type name shown in information_schema, profiles and Arrow schema JSON.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            ColType::Int => "Int64",
            ColType::Float => "Float64",
            ColType::Text => "Utf8",
            ColType::Bool => "Boolean",
            ColType::Blob => "Binary",
            ColType::Timestamp => "Timestamp(Microsecond, Some(\"UTC\"))",
            ColType::Date => "Date32",
        }
    }

    /// From a SQLite declared type.
    pub(crate) fn from_decl(d: &str) -> Option<ColType> {
        let u = d.to_ascii_uppercase();
        Some(match u.as_str() {
            "BIGINT" | "INTEGER" | "INT" => ColType::Int,
            "DOUBLE" | "REAL" | "FLOAT" => ColType::Float,
            "TEXT" => ColType::Text,
            "BOOLEAN" => ColType::Bool,
            "BLOB" => ColType::Blob,
            "TIMESTAMP" => ColType::Timestamp,
            "DATE" => ColType::Date,
            _ => return None,
        })
    }

    /// From a user-facing column type (`LoadManagedTableRequest.columns`).
    pub(crate) fn from_user(t: &str) -> Option<ColType> {
        let u = t.trim().to_ascii_uppercase();
        let base = u.split('(').next().unwrap_or("").trim();
        Some(match base {
            "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "INT8" | "INT16" | "INT32" | "INT64"
            | "LONG" | "UINT8" | "UINT16" | "UINT32" | "UINT64" | "HUGEINT" => ColType::Int,
            "FLOAT" | "DOUBLE" | "REAL" | "FLOAT4" | "FLOAT8" | "FLOAT32" | "FLOAT64" | "DECIMAL"
            | "NUMERIC" | "DOUBLE PRECISION" => ColType::Float,
            "TEXT" | "VARCHAR" | "STRING" | "CHAR" | "UTF8" | "JSON" | "UUID" => ColType::Text,
            "BOOL" | "BOOLEAN" => ColType::Bool,
            "BLOB" | "BYTEA" | "BINARY" | "VARBINARY" => ColType::Blob,
            "TIMESTAMP" | "TIMESTAMPTZ" | "DATETIME" | "TIMESTAMP WITH TIME ZONE" => ColType::Timestamp,
            "DATE" => ColType::Date,
            _ => return None,
        })
    }
}

/// Rows to put into a table: column names and types, then row-major values.
#[derive(Debug, Default)]
pub(crate) struct Dataset {
    pub columns: Vec<(String, ColType)>,
    pub rows: Vec<Vec<Value>>,
}

/// How unqualified and qualified table names resolve for one query.
#[derive(Debug, Default)]
pub(crate) struct NameCtx {
    /// catalog -> schema -> table -> storage table name (all keys lower-case).
    pub catalogs: HashMap<String, HashMap<String, HashMap<String, String>>>,
    /// Catalog used for `schema.table` and bare `table`.
    pub default_catalog: Option<String>,
    /// Schema used for bare `table`.
    pub default_schema: Option<String>,
}

impl NameCtx {
    fn lookup(&self, cat: &str, schema: &str, table: &str) -> Option<&String> {
        self.catalogs.get(cat)?.get(schema)?.get(table)
    }
}

/// A column profile computed by SQL.
#[derive(Debug)]
pub(crate) struct ColumnStats {
    pub cardinality: i64,
    pub null_count: i64,
    pub min: Option<String>,
    pub max: Option<String>,
    pub mean: Option<f64>,
    pub min_len: Option<i64>,
    pub max_len: Option<i64>,
    pub avg_len: Option<f64>,
    pub true_count: i64,
    pub top: Vec<(Option<String>, i64)>,
}

/// One workspace's SQLite database.
pub(crate) struct Sql {
    conn: Connection,
}

impl std::fmt::Debug for Sql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sql")
    }
}

fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Sql {
    pub(crate) fn new() -> Sql {
        let conn = Connection::open_in_memory().expect("sqlite in-memory database");
        let _ = conn.execute_batch("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;");
        Sql { conn }
    }

    /// (Re)create an empty table.
    pub(crate) fn create_table(&mut self, storage: &str, cols: &[(String, ColType)]) -> Result<(), String> {
        let defs: Vec<String> = cols.iter().map(|(n, t)| format!("{} {}", q(n), t.decl())).collect();
        let body = if defs.is_empty() { "\"_empty\" TEXT".to_string() } else { defs.join(", ") };
        self.conn
            .execute_batch(&format!("DROP TABLE IF EXISTS {s}; CREATE TABLE {s} ({body});", s = q(storage)))
            .map_err(err)
    }

    /// Drop a table if it exists.
    pub(crate) fn drop_table(&mut self, storage: &str) {
        let _ = self.conn.execute_batch(&format!("DROP TABLE IF EXISTS {};", q(storage)));
    }

    /// Add a column.
    pub(crate) fn add_column(&mut self, storage: &str, name: &str, t: ColType) -> Result<(), String> {
        self.conn
            .execute_batch(&format!("ALTER TABLE {} ADD COLUMN {} {};", q(storage), q(name), t.decl()))
            .map_err(err)
    }

    /// Insert rows (values in `cols` order) in one transaction.
    pub(crate) fn insert(
        &mut self,
        storage: &str,
        cols: &[String],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64, String> {
        if cols.is_empty() {
            return Ok(0);
        }
        let tx = self.conn.transaction().map_err(err)?;
        let mut n = 0;
        {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                q(storage),
                cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
                vec!["?"; cols.len()].join(", ")
            );
            let mut st = tx.prepare(&sql).map_err(err)?;
            for r in rows {
                st.execute(params_from_iter(r)).map_err(err)?;
                n += 1;
            }
        }
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// Delete rows whose `key` columns match any of the given rows (for upserts).
    pub(crate) fn delete_matching(
        &mut self,
        storage: &str,
        key: &[String],
        keys: Vec<Vec<Value>>,
    ) -> Result<(), String> {
        let cond = key.iter().map(|k| format!("{} IS ?", q(k))).collect::<Vec<_>>().join(" AND ");
        let sql = format!("DELETE FROM {} WHERE {cond}", q(storage));
        let tx = self.conn.transaction().map_err(err)?;
        {
            let mut st = tx.prepare(&sql).map_err(err)?;
            for k in keys {
                st.execute(params_from_iter(k)).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Copy a table's schema and rows (for forks).
    pub(crate) fn copy_table(
        &mut self,
        from: &str,
        to: &str,
        cols: &[(String, ColType)],
    ) -> Result<(), String> {
        self.create_table(to, cols)?;
        if cols.is_empty() {
            return Ok(());
        }
        self.conn.execute_batch(&format!("INSERT INTO {} SELECT * FROM {};", q(to), q(from))).map_err(err)
    }

    /// Number of rows in a table.
    pub(crate) fn count(&self, storage: &str) -> i64 {
        self.conn.query_row(&format!("SELECT COUNT(*) FROM {}", q(storage)), [], |r| r.get(0)).unwrap_or(0)
    }

    /// Create or drop a real SQLite index for `sorted` indexes.
    pub(crate) fn create_index(&mut self, name: &str, storage: &str, cols: &[String]) {
        let _ = self.conn.execute_batch(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} ({});",
            q(name),
            q(storage),
            cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
        ));
    }

    /// Drop a SQLite index.
    pub(crate) fn drop_index(&mut self, name: &str) {
        let _ = self.conn.execute_batch(&format!("DROP INDEX IF EXISTS {};", q(name)));
    }

    /// Profile one column.
    pub(crate) fn column_stats(&self, storage: &str, col: &str, t: ColType) -> ColumnStats {
        let c = q(col);
        let s = q(storage);
        let base = format!(
            "SELECT COUNT(DISTINCT {c}), SUM(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END), \
             CAST(MIN({c}) AS TEXT), CAST(MAX({c}) AS TEXT), AVG({c}), MIN(LENGTH({c})), \
             MAX(LENGTH({c})), AVG(LENGTH({c})), SUM(CASE WHEN {c} = 1 THEN 1 ELSE 0 END) FROM {s}"
        );
        let mut st = self
            .conn
            .query_row(&base, [], |r| {
                Ok(ColumnStats {
                    cardinality: r.get::<_, Option<i64>>(0)?.unwrap_or(0),
                    null_count: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    min: r.get(2)?,
                    max: r.get(3)?,
                    mean: r.get(4)?,
                    min_len: r.get(5)?,
                    max_len: r.get(6)?,
                    avg_len: r.get(7)?,
                    true_count: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
                    top: Vec::new(),
                })
            })
            .unwrap_or(ColumnStats {
                cardinality: 0,
                null_count: 0,
                min: None,
                max: None,
                mean: None,
                min_len: None,
                max_len: None,
                avg_len: None,
                true_count: 0,
                top: Vec::new(),
            });
        if t == ColType::Text
            && st.cardinality <= 20
            && let Ok(mut p) = self.conn.prepare(&format!(
                "SELECT CAST({c} AS TEXT), COUNT(*) FROM {s} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20"
            ))
        {
            st.top = p
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map(|it| it.filter_map(Result::ok).collect())
                .unwrap_or_default();
        }
        st
    }

    /// Run one read-only statement and materialise the result.
    pub(crate) fn query(&mut self, ctx: &NameCtx, sql: &str) -> Result<ResultSet, String> {
        let rewritten = rewrite(ctx, sql)?;
        // Temp views make bare table names of the default catalog and schema resolve.
        let views: Vec<String> = {
            let mut st =
                self.conn.prepare("SELECT name FROM temp.sqlite_master WHERE type = 'view'").map_err(err)?;
            st.query_map([], |r| r.get(0)).map_err(err)?.filter_map(Result::ok).collect()
        };
        let mut ddl = String::new();
        for v in views {
            ddl.push_str(&format!("DROP VIEW temp.{};", q(&v)));
        }
        if let (Some(c), Some(s)) = (&ctx.default_catalog, &ctx.default_schema)
            && let Some(tables) = ctx.catalogs.get(c).and_then(|m| m.get(s))
        {
            for (name, storage) in tables {
                ddl.push_str(&format!("CREATE TEMP VIEW {} AS SELECT * FROM main.{};", q(name), q(storage)));
            }
        }
        self.conn.execute_batch(&ddl).map_err(err)?;
        let mut st = self.conn.prepare(&rewritten).map_err(err)?;
        if !st.readonly() {
            return Err("only read-only statements (SELECT, WITH, VALUES) are supported".into());
        }
        let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
        let decls: Vec<Option<ColType>> =
            st.columns().iter().map(|c| c.decl_type().and_then(ColType::from_decl)).collect();
        let mut bufs: Vec<ResultBuf> = (0..names.len()).map(|_| ResultBuf::new()).collect();
        let mut nrows = 0usize;
        let mut rows = st.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            for (i, b) in bufs.iter_mut().enumerate() {
                b.push(r.get_ref(i).map_err(err)?);
            }
            nrows += 1;
        }
        let rs = ResultSet::from_bufs(names, decls, bufs, nrows);
        Ok(rs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Ident,
    Quoted,
    Dot,
    LParen,
    RParen,
    Number,
    Other,
}

fn tokenize(sql: &str) -> Result<Vec<(Tok, usize, usize)>, String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = if c == b'\'' {
            i += 1;
            loop {
                if i >= b.len() {
                    return Err("unterminated string literal".into());
                }
                if b[i] == b'\'' {
                    if i + 1 < b.len() && b[i + 1] == b'\'' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            Tok::Other
        } else if c == b'"' || c == b'`' {
            let close = c;
            i += 1;
            loop {
                if i >= b.len() {
                    return Err("unterminated quoted identifier".into());
                }
                if b[i] == close {
                    if i + 1 < b.len() && b[i + 1] == close {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
            Tok::Quoted
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            Tok::Other
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i = (i + 2).min(b.len());
            Tok::Other
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            Tok::Ident
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            Tok::Number
        } else {
            i += 1;
            match c {
                b'.' => Tok::Dot,
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                _ => Tok::Other,
            }
        };
        out.push((kind, start, i));
    }
    Ok(out)
}

fn ident_text(sql: &str, kind: Tok, s: usize, e: usize) -> String {
    let t = &sql[s..e];
    match kind {
        Tok::Quoted => {
            let close = &t[..1];
            t[1..t.len() - 1].replace(&format!("{close}{close}"), close).to_lowercase()
        }
        _ => t.to_lowercase(),
    }
}

/// The subquery `synthetic(N)` expands to: N rows of mixed types.
pub(crate) fn synthetic_sql(n: u64) -> String {
    format!(
        "(WITH RECURSIVE __syn(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM __syn WHERE i + 1 < {n}) \
         SELECT i AS id, i * 0.25 AS amount, 'name-' || i AS name, (i % 2 = 0) AS flag, \
         CASE WHEN i % 7 = 0 THEN NULL ELSE i % 1000 END AS maybe, \
         printf('2024-%02d-%02dT%02d:%02d:%02dZ', 1 + i % 12, 1 + i % 28, i % 24, i % 60, (i * 7) % 60) AS ts \
         FROM __syn)"
    )
}

/// Rewrite Postgres casts `expr::type` into `CAST(expr AS type)` for simple operands:
/// literals, (dotted) identifiers, parenthesised groups and function calls; chains work.
pub(crate) fn rewrite_casts(sql: &str) -> Result<String, String> {
    if !sql.contains("::") {
        return Ok(sql.to_string());
    }
    let toks = tokenize(sql)?;
    let text = |i: usize| &sql[toks[i].1..toks[i].2];
    let is_ws = |i: usize| toks[i].0 == Tok::Other && text(i).chars().all(char::is_whitespace);
    let mut pieces: Vec<String> = (0..toks.len()).map(|i| text(i).to_string()).collect();
    let mut group_start: HashMap<usize, usize> = HashMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        if !(text(i) == ":" && text(i + 1) == ":") {
            i += 1;
            continue;
        }
        // The type: identifiers, optionally several words, `(p, s)` and `[]`.
        let mut j = i + 2;
        while j < toks.len() && is_ws(j) {
            j += 1;
        }
        if j >= toks.len() || toks[j].0 != Tok::Ident {
            i += 2;
            continue;
        }
        let mut end = j + 1;
        loop {
            let mut n = end;
            while n < toks.len() && is_ws(n) {
                n += 1;
            }
            if n < toks.len()
                && toks[n].0 == Tok::Ident
                && matches!(
                    text(n).to_ascii_lowercase().as_str(),
                    "precision" | "varying" | "with" | "without" | "time" | "zone"
                )
            {
                end = n + 1;
            } else if n < toks.len() && toks[n].0 == Tok::LParen {
                let mut depth = 0;
                let mut m = n;
                while m < toks.len() {
                    match toks[m].0 {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    m += 1;
                }
                end = (m + 1).min(toks.len());
            } else if n + 1 < toks.len() && text(n) == "[" && text(n + 1) == "]" {
                end = n + 2;
            } else {
                break;
            }
        }
        // The operand, walking back over whitespace.
        let mut k = i;
        while k > 0 && is_ws(k - 1) {
            k -= 1;
        }
        if k == 0 {
            i = end;
            continue;
        }
        let last = k - 1;
        let start = if let Some(&g) = group_start.get(&last) {
            Some(g)
        } else if toks[last].0 == Tok::RParen {
            let mut depth = 0;
            let mut m = last as isize;
            while m >= 0 {
                match toks[m as usize].0 {
                    Tok::RParen => depth += 1,
                    Tok::LParen => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                m -= 1;
            }
            (m >= 0).then(|| {
                let m = m as usize;
                if m > 0 && toks[m - 1].0 == Tok::Ident { m - 1 } else { m }
            })
        } else if matches!(toks[last].0, Tok::Ident | Tok::Quoted | Tok::Number)
            || text(last).starts_with('\'')
        {
            let mut s = last;
            while s >= 2 && toks[s - 1].0 == Tok::Dot && matches!(toks[s - 2].0, Tok::Ident | Tok::Quoted) {
                s -= 2;
            }
            Some(s)
        } else {
            None
        };
        let Some(start) = start else {
            i = end;
            continue;
        };
        let ty: String = (j..end).map(text).collect::<String>().trim_end_matches("[]").to_string();
        pieces[start] = format!("CAST({}", pieces[start]);
        for p in pieces.iter_mut().take(end).skip(i) {
            p.clear();
        }
        pieces[end - 1] = format!(" AS {ty})");
        group_start.insert(end - 1, start);
        i = end;
    }
    Ok(pieces.concat())
}

/// Rewrite `catalog.schema.table`, `schema.table` and `synthetic(N)` into SQLite names.
pub(crate) fn rewrite(ctx: &NameCtx, sql: &str) -> Result<String, String> {
    let casted = rewrite_casts(sql)?;
    let sql = casted.as_str();
    let toks = tokenize(sql)?;
    let mut out = String::with_capacity(sql.len() + 64);
    let mut last = 0;
    let mut i = 0;
    while i < toks.len() {
        let (k, s, e) = toks[i];
        let is_ident = matches!(k, Tok::Ident | Tok::Quoted);
        let after_dot = i > 0 && toks[i - 1].0 == Tok::Dot;
        if !is_ident || after_dot {
            i += 1;
            continue;
        }
        // Postgres ILIKE: SQLite's LIKE is already case-insensitive for ASCII.
        if k == Tok::Ident && sql[s..e].eq_ignore_ascii_case("ilike") {
            out.push_str(&sql[last..s]);
            out.push_str("LIKE");
            last = e;
            i += 1;
            continue;
        }
        // synthetic(N)
        if k == Tok::Ident
            && sql[s..e].eq_ignore_ascii_case("synthetic")
            && toks.get(i + 1).map(|t| t.0) == Some(Tok::LParen)
            && toks.get(i + 2).map(|t| t.0) == Some(Tok::Number)
            && toks.get(i + 3).map(|t| t.0) == Some(Tok::RParen)
        {
            let (_, ns, ne) = toks[i + 2];
            let n: u64 = sql[ns..ne].parse().map_err(|_| "synthetic(N) needs an integer N".to_string())?;
            let end = toks[i + 3].2;
            out.push_str(&sql[last..s]);
            out.push_str(&synthetic_sql(n));
            last = end;
            i += 4;
            continue;
        }
        // Collect a dotted chain.
        let mut parts = vec![(k, s, e)];
        let mut j = i + 1;
        while j + 1 < toks.len() && toks[j].0 == Tok::Dot && matches!(toks[j + 1].0, Tok::Ident | Tok::Quoted)
        {
            parts.push(toks[j + 1]);
            j += 2;
        }
        let names: Vec<String> = parts.iter().map(|&(k, s, e)| ident_text(sql, k, s, e)).collect();
        let mut replaced: Option<(String, usize)> = None; // storage, parts consumed
        if names.len() >= 3
            && let Some(st) = ctx.lookup(&names[0], &names[1], &names[2])
        {
            replaced = Some((st.clone(), 3));
        }
        if replaced.is_none()
            && names.len() >= 2
            && let Some(dc) = &ctx.default_catalog
            && let Some(st) = ctx.lookup(dc, &names[0], &names[1])
        {
            replaced = Some((st.clone(), 2));
        }
        if let Some((storage, used)) = replaced {
            out.push_str(&sql[last..s]);
            out.push_str(&format!("main.{}", q(&storage)));
            last = parts[used - 1].2;
        }
        i = j;
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NameCtx {
        let mut c = NameCtx::default();
        c.catalogs
            .entry("main".into())
            .or_default()
            .entry("public".into())
            .or_default()
            .insert("orders".into(), "t1".into());
        c.default_catalog = Some("main".into());
        c.default_schema = Some("public".into());
        c
    }

    #[test]
    fn rewrites_names() {
        let c = ctx();
        assert_eq!(
            rewrite(&c, "select o.id from main.public.orders o").unwrap(),
            "select o.id from main.\"t1\" o"
        );
        assert_eq!(
            rewrite(&c, "select 'main.public.orders' from public.orders").unwrap(),
            "select 'main.public.orders' from main.\"t1\""
        );
        assert_eq!(
            rewrite(&c, "select \"Public\".orders.id from x").unwrap(),
            "select main.\"t1\".id from x"
        );
        assert!(rewrite(&c, "select * from synthetic(5)").unwrap().contains("WITH RECURSIVE"));
        assert_eq!(rewrite(&c, "select 1 where 'A' ilike 'a'").unwrap(), "select 1 where 'A' LIKE 'a'");
    }

    #[test]
    fn rewrites_postgres_casts() {
        let r = |s: &str| rewrite_casts(s).unwrap();
        assert_eq!(r("select 1::bigint"), "select CAST(1 AS bigint)");
        assert_eq!(r("select '2'::int::text"), "select CAST(CAST('2' AS int) AS text)");
        assert_eq!(r("select t.a::double precision"), "select CAST(t.a AS double precision)");
        assert_eq!(r("select (a + b)::numeric(10,2)"), "select CAST((a + b) AS numeric(10,2))");
        assert_eq!(r("select sum(x)::int, 'a::b'"), "select CAST(sum(x) AS int), 'a::b'");
        assert_eq!(r("select x :: text"), "select CAST(x  AS text)");
    }

    #[test]
    fn runs_queries() {
        let mut s = Sql::new();
        s.create_table("t1", &[("id".into(), ColType::Int), ("name".into(), ColType::Text)]).unwrap();
        s.insert(
            "t1",
            &["id".into(), "name".into()],
            vec![vec![Value::Integer(1), Value::Text("a".into())], vec![Value::Integer(2), Value::Null]],
        )
        .unwrap();
        let r = s.query(&ctx(), "SELECT id, name FROM orders ORDER BY id").unwrap();
        assert_eq!(r.rows, 2);
        let r = s.query(&ctx(), "SELECT * FROM synthetic(1000)").unwrap();
        assert_eq!(r.rows, 1000);
        assert!(s.query(&ctx(), "DELETE FROM orders").is_err());
        let r = s.query(&ctx(), "SELECT '7'::bigint + 1 AS n").unwrap();
        assert_eq!(r.json_value_rows(10), serde_json::json!([[8]]));
    }
}
