//! Result rows decoded into your own types.

use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::generated::models::{GetResultResponse, QueryResponse};
use crate::models::Cell;

/// Decodes rows of cells into `T`, one JSON object per row keyed by column name, built from
/// the cells' exact JSON text: a field of type [`Cell`] keeps a DECIMAL(38,2) or a large
/// integer exactly as sent, and integer fields decode without passing through `f64`.
pub fn rows_as<T: DeserializeOwned>(columns: &[String], rows: &[Vec<Cell>]) -> Result<Vec<T>, Error> {
    let keys: Vec<String> = columns.iter().map(|c| serde_json::Value::from(c.as_str()).to_string()).collect();
    let mut object = String::new();
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            if row.len() != keys.len() {
                return Err(Error::decode(
                    format!("row {i} has {} cells for {} columns", row.len(), keys.len()),
                    None,
                ));
            }
            object.clear();
            object.push('{');
            for (j, (k, cell)) in keys.iter().zip(row).enumerate() {
                if j > 0 {
                    object.push(',');
                }
                object.push_str(k);
                object.push(':');
                object.push_str(cell.as_json());
            }
            object.push('}');
            serde_json::from_str(&object).map_err(|e| {
                Error::decode(format!("row {i} does not fit the target type: {e}"), Some(Box::new(e)))
            })
        })
        .collect()
}

impl QueryResponse {
    /// The rows decoded into `T` (a struct whose fields are named like the columns, a
    /// map, ...): see [`rows_as`].
    pub fn rows_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        rows_as(&self.columns, &self.rows)
    }
}

impl GetResultResponse {
    /// The rows decoded into `T`: see [`rows_as`]. Empty when the answer carried no rows.
    pub fn rows_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        rows_as(self.columns.as_deref().unwrap_or_default(), self.rows.as_deref().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test; // runs under wasm-bindgen-test-runner

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Row {
        id: i64,
        amount: Cell,
        #[serde(rename = "big")]
        big: u64,
        note: Option<String>,
    }

    #[test]
    fn rows_decode_losslessly() {
        let rows: Vec<Vec<Cell>> = serde_json::from_str(
            r#"[[1, 12345678901234567890123456789012345.67, 18446744073709551615, null]]"#,
        )
        .unwrap();
        let cols = ["id", "amount", "big", "note"].map(String::from);
        let got: Vec<Row> = rows_as(&cols, &rows).unwrap();
        assert_eq!(
            got,
            [Row {
                id: 1,
                amount: Cell::from_json("12345678901234567890123456789012345.67").unwrap(),
                big: u64::MAX,
                note: None
            }]
        );
        let err = rows_as::<Row>(&cols[..3], &rows).unwrap_err();
        assert!(err.to_string().contains("row 0 has 4 cells for 3 columns"), "{err}");
    }
}
