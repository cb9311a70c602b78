//! Query strings as dockerd reads them: booleans as "1"/"true"/"True", filters as JSON maps.

use std::collections::HashMap;

use crate::error::{ApiError, ApiResult};

/// Parsed query parameters.
#[derive(Debug, Default)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> ApiResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
        Ok(Self(pairs.into_iter().collect()))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// dockerd's boolean: absent, "", "0", "false", "False", "no" are false.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| !matches!(v, "" | "0" | "false" | "False" | "FALSE" | "no"))
    }

    /// A flag that defaults to true when absent.
    pub fn flag_or(&self, key: &str, default: bool) -> bool {
        if self.0.contains_key(key) {
            self.flag(key)
        } else {
            default
        }
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {v}"))),
        }
    }

    /// `filters={"key":["v"]}` (or the old `{"key":{"v":true}}` form).
    pub fn filters(&self) -> ApiResult<HashMap<String, Vec<String>>> {
        let Some(raw) = self.get("filters").filter(|v| !v.is_empty()) else {
            return Ok(HashMap::new());
        };
        let value: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filter: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filter"))?;
        let mut filters = HashMap::new();
        for (key, values) in object {
            let list: Vec<String> = match values {
                serde_json::Value::Array(items) => items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                serde_json::Value::Object(map) => map.keys().cloned().collect(),
                _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
            };
            filters.insert(key.clone(), list);
        }
        Ok(filters)
    }

    /// A time given as Unix seconds ("1700000000.123") or RFC 3339.
    pub fn time(&self, key: &str) -> ApiResult<Option<f64>> {
        let Some(raw) = self.get(key).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        if let Ok(seconds) = raw.parse::<f64>() {
            return Ok(Some(seconds));
        }
        chrono::DateTime::parse_from_rfc3339(raw)
            .map(|t| Some(t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9))
            .map_err(|_| ApiError::bad_request(format!("invalid value for {key}: {raw}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_filters_and_times() {
        let q = Query::parse(Some(
            "all=1&force=False&filters=%7B%22name%22%3A%5B%22web%22%5D%7D&since=10.5",
        ))
        .unwrap();
        assert!(q.flag("all") && !q.flag("force") && !q.flag("missing"));
        assert_eq!(q.filters().unwrap()["name"], vec!["web"]);
        assert_eq!(q.time("since").unwrap(), Some(10.5));
        let old = Query::parse(Some(
            "filters=%7B%22status%22%3A%7B%22exited%22%3Atrue%7D%7D",
        ))
        .unwrap();
        assert_eq!(old.filters().unwrap()["status"], vec!["exited"]);
        assert!(
            Query::parse(Some("filters=nope"))
                .unwrap()
                .filters()
                .is_err()
        );
    }
}
