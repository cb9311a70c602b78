//! The filters of `GET /volumes` (`dangling`, `driver`, `label`, `name`) and of
//! `POST /volumes/prune` (`label`, `label!`, `all`), as dockerd reads them. Pure.

use std::collections::HashMap;

use crate::error::{Error, Result};

/// Filters as the API passes them: key -> values.
pub type Filters = HashMap<String, Vec<String>>;

/// What a filter looks at.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub driver: &'a str,
    pub labels: Option<&'a HashMap<String, String>>,
    /// How many containers use it.
    pub refs: usize,
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(Error::InvalidFilter(format!("{key}={other}"))),
    }
}

/// Refuses unknown keys and bad `dangling` values of a list.
pub fn check_list(filters: &Filters) -> Result<()> {
    for (key, values) in filters {
        match key.as_str() {
            "name" | "driver" | "label" => {}
            "dangling" => {
                for value in values {
                    parse_bool(key, value)?;
                }
            }
            other => return Err(Error::InvalidFilter(other.to_string())),
        }
    }
    Ok(())
}

/// Refuses unknown keys of a prune; returns the `all` filter (None when absent).
pub fn check_prune(filters: &Filters) -> Result<Option<bool>> {
    let mut all = None;
    for (key, values) in filters {
        match key.as_str() {
            "label" | "label!" => {}
            "all" => {
                for value in values {
                    all = Some(parse_bool(key, value)?);
                }
            }
            other => return Err(Error::InvalidFilter(other.to_string())),
        }
    }
    Ok(all)
}

/// A `label` value against labels: `key` (present) or `key=value`.
fn label_matches(labels: Option<&HashMap<String, String>>, wanted: &str) -> bool {
    let labels = match labels {
        Some(labels) => labels,
        None => return false,
    };
    match wanted.split_once('=') {
        Some((key, value)) => labels.get(key).is_some_and(|v| v == value),
        None => labels.contains_key(wanted),
    }
}

/// dockerd's label rule: every `label` value holds, and not every `label!` value does.
pub fn labels_match(filters: &Filters, labels: Option<&HashMap<String, String>>) -> bool {
    if let Some(wanted) = filters.get("label")
        && !wanted.iter().all(|w| label_matches(labels, w))
    {
        return false;
    }
    if let Some(unwanted) = filters.get("label!").filter(|u| !u.is_empty())
        && unwanted.iter().all(|u| label_matches(labels, u))
    {
        return false;
    }
    true
}

/// A name filter: a substring, anchored by a leading `^` or a trailing `$` (the forms of
/// dockerd's regular expressions that are used in practice).
fn name_matches(name: &str, pattern: &str) -> bool {
    let anchored_start = pattern.starts_with('^');
    let anchored_end = pattern.ends_with('$') && pattern.len() > 1;
    let core = pattern.trim_start_matches('^').trim_end_matches('$');
    match (anchored_start, anchored_end) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

/// Whether a volume passes list filters (already checked with [`check_list`]).
pub fn matches_list(filters: &Filters, candidate: &Candidate<'_>) -> bool {
    filters.iter().all(|(key, values)| match key.as_str() {
        "name" => values.iter().any(|v| name_matches(candidate.name, v)),
        "driver" => values.iter().any(|v| v == candidate.driver),
        "label" => labels_match(
            &Filters::from([(key.clone(), values.clone())]),
            candidate.labels,
        ),
        "dangling" => values
            .iter()
            .filter_map(|v| parse_bool(key, v).ok())
            .all(|dangling| dangling == (candidate.refs == 0)),
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(pairs: &[(&str, &str)]) -> Filters {
        let mut out = Filters::new();
        for (k, v) in pairs {
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
        out
    }

    #[test]
    fn list_table() {
        let labels = HashMap::from([("a".to_string(), "b".to_string()), ("c".into(), "".into())]);
        let used = Candidate {
            name: "data-1",
            driver: "local",
            labels: Some(&labels),
            refs: 2,
        };
        let unused = Candidate {
            name: "cache",
            driver: "testplugin",
            labels: None,
            refs: 0,
        };
        for (given, used_passes, unused_passes) in [
            (&[][..], true, true),
            (&[("dangling", "true")][..], false, true),
            (&[("dangling", "0")][..], true, false),
            (&[("driver", "local")][..], true, false),
            (
                &[("driver", "local"), ("driver", "testplugin")][..],
                true,
                true,
            ),
            (&[("name", "data")][..], true, false),
            (&[("name", "^cache$")][..], false, true),
            (&[("name", "^dat")][..], true, false),
            (&[("name", "-1$")][..], true, false),
            (&[("label", "a")][..], true, false),
            (&[("label", "a=b")][..], true, false),
            (&[("label", "a=x")][..], false, false),
            (&[("label", "a"), ("label", "c")][..], true, false),
            (&[("label", "a"), ("label", "zz")][..], false, false),
        ] {
            let f = filters(given);
            check_list(&f).unwrap();
            assert_eq!(matches_list(&f, &used), used_passes, "{given:?} used");
            assert_eq!(matches_list(&f, &unused), unused_passes, "{given:?} unused");
        }
        assert_eq!(
            check_list(&filters(&[("bogus", "1")]))
                .unwrap_err()
                .to_string(),
            "Invalid filter 'bogus'"
        );
        assert_eq!(
            check_list(&filters(&[("dangling", "maybe")]))
                .unwrap_err()
                .to_string(),
            "Invalid filter 'dangling=maybe'"
        );
    }

    #[test]
    fn prune_table() {
        assert_eq!(check_prune(&filters(&[])).unwrap(), None);
        assert_eq!(
            check_prune(&filters(&[("all", "true")])).unwrap(),
            Some(true)
        );
        assert_eq!(check_prune(&filters(&[("all", "0")])).unwrap(), Some(false));
        assert!(check_prune(&filters(&[("all", "x")])).is_err());
        assert_eq!(
            check_prune(&filters(&[("name", "x")]))
                .unwrap_err()
                .to_string(),
            "Invalid filter 'name'"
        );
        let labels = HashMap::from([("keep".to_string(), "yes".to_string())]);
        let f = filters(&[("label!", "keep")]);
        assert!(!labels_match(&f, Some(&labels)));
        assert!(labels_match(&f, None));
        let f = filters(&[("label", "keep=yes")]);
        assert!(labels_match(&f, Some(&labels)));
        assert!(!labels_match(&f, None));
    }
}
