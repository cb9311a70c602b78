//! Read-only views in the Engine API's shapes: `GET /images/{name}/json` (ImageInspect),
//! `GET /images/json` with filters (ImageSummary), `GET /images/{name}/history`.

use std::collections::BTreeMap;

use types::models;

use crate::error::{Error, Result};
use crate::store::{Image, ImageStore};

/// Options of `GET /images/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `all=true`: include intermediate images (images with children and no tag).
    pub all: bool,
    /// The `filters` query parameter, decoded: `{"dangling": ["true"], "label": ["a=b"]}`.
    pub filters: BTreeMap<String, Vec<String>>,
}

/// The filter keys `docker images` accepts (daemon/images/images.go `acceptedImageFilterTags`).
const ACCEPTED_FILTERS: [&str; 6] = ["dangling", "label", "before", "since", "reference", "until"];

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

type Timestamp = chrono::DateTime<chrono::FixedOffset>;

/// An RFC 3339 time, if present and well-formed.
fn timestamp(created: Option<&str>) -> Option<Timestamp> {
    created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
}

/// Unix seconds of an RFC 3339 time; 0 if absent or malformed.
fn unix_seconds(created: Option<&str>) -> i64 {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map_or(0, |t| t.timestamp())
}

impl ImageStore {
    /// `docker image inspect`.
    pub fn inspect(&self, name_or_id: &str) -> Result<models::ImageInspect> {
        let image = self.resolve(name_or_id)?;
        Ok(self.inspect_image(&image))
    }

    fn inspect_image(&self, image: &Image) -> models::ImageInspect {
        let config = &image.config;
        let mut data = std::collections::HashMap::new();
        let lowers: Vec<String> = image
            .record
            .layers
            .iter()
            .rev()
            .filter_map(|l| self.snapshots.committed_fs(&l.chain_id).ok())
            .map(|p| p.display().to_string())
            .collect();
        if let Some((top, rest)) = lowers.split_first() {
            data.insert("UpperDir".to_owned(), top.clone());
            if !rest.is_empty() {
                data.insert("LowerDir".to_owned(), rest.join(":"));
            }
        }
        models::ImageInspect {
            id: Some(image.id.to_string()),
            repo_tags: Some(image.repo_tags()),
            repo_digests: Some(image.repo_digests()),
            comment: config.comment.clone(),
            created: config.created.clone(),
            author: config.author.clone(),
            config: Some(image.container_config().to_model()),
            architecture: Some(config.architecture.clone()),
            variant: config.variant.clone(),
            os: Some(config.os.clone()),
            os_version: config.os_version.clone(),
            size: Some(i64_of(image.record.size())),
            graph_driver: Some(models::DriverData {
                name: self.driver().docker_name().into(),
                data,
            }),
            root_fs: Some(models::ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(
                    image
                        .record
                        .layers
                        .iter()
                        .map(|l| l.diff_id.to_string())
                        .collect(),
                ),
            }),
            metadata: Some(models::ImageInspectMetadata {
                last_tag_time: image.record.last_tag_time.clone(),
            }),
            ..Default::default()
        }
    }

    /// `docker images`: summaries of the images matching the filters, newest first.
    ///
    /// Filters: `dangling=true|false`, `label=key` / `label=key=value` (all must match),
    /// `reference=pattern` (glob over the familiar name or name:tag, any may match),
    /// `before=image` / `since=image` (created strictly before/after that image),
    /// `until=timestamp` (unix seconds or RFC 3339).
    pub fn list(&self, options: &ListOptions) -> Result<Vec<models::ImageSummary>> {
        for key in options.filters.keys() {
            if !ACCEPTED_FILTERS.contains(&key.as_str()) {
                return Err(Error::InvalidFilter(format!("invalid filter '{key}'")));
            }
        }
        let mut dangling = None;
        for v in options.filters.get("dangling").into_iter().flatten() {
            dangling = Some(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(Error::InvalidFilter(format!(
                        "invalid filter 'dangling={v}'"
                    )));
                }
            });
        }
        // Compared at full precision, as Docker compares `time.Time`s.
        let created_of = |name: &str| -> Result<Option<Timestamp>> {
            let image = self.resolve(name)?;
            Ok(timestamp(image.config.created.as_deref()))
        };
        let before = match options.filters.get("before").and_then(|v| v.first()) {
            Some(n) => Some(created_of(n)?),
            None => None,
        };
        let since = match options.filters.get("since").and_then(|v| v.first()) {
            Some(n) => Some(created_of(n)?),
            None => None,
        };
        let until = match options.filters.get("until").and_then(|v| v.first()) {
            Some(t) => Some(parse_timestamp(t)?),
            None => None,
        };
        let labels = options.filters.get("label").cloned().unwrap_or_default();
        let patterns = options
            .filters
            .get("reference")
            .cloned()
            .unwrap_or_default();
        let mut out: Vec<(Option<Timestamp>, models::ImageSummary)> = Vec::new();
        let images = self.images();
        let has_children =
            |id: &crate::ImageId| images.iter().any(|i| i.record.parent.as_ref() == Some(id));
        for image in &images {
            // Without `all`, untagged images that are parents of others (intermediate build
            // steps) are hidden, as `docker images` hides them.
            if !options.all && image.is_dangling() && has_children(&image.id) {
                continue;
            }
            let precise = timestamp(image.config.created.as_deref());
            let created = precise.map_or(0, |t| t.timestamp());
            if dangling.is_some_and(|d| d != image.is_dangling()) {
                continue;
            }
            if before.as_ref().is_some_and(|b| precise >= *b)
                || since.as_ref().is_some_and(|s| precise <= *s)
            {
                continue;
            }
            if until.is_some_and(|u| created >= u) {
                continue;
            }
            let config = image.container_config();
            let image_labels = config.labels.clone().unwrap_or_default();
            if !labels.iter().all(|l| match l.split_once('=') {
                Some((k, v)) => image_labels.get(k).is_some_and(|x| x == v),
                None => image_labels.contains_key(l),
            }) {
                continue;
            }
            if !patterns.is_empty() {
                let matched = image.references.iter().any(|r| {
                    patterns
                        .iter()
                        .any(|p| glob_match(p, &r.familiar()) || glob_match(p, &r.familiar_name()))
                });
                if !matched {
                    continue;
                }
            }
            out.push((
                precise,
                models::ImageSummary {
                    id: image.id.to_string(),
                    parent_id: image
                        .record
                        .parent
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    repo_tags: image.repo_tags(),
                    repo_digests: image.repo_digests(),
                    created,
                    size: i64_of(image.record.size()),
                    shared_size: -1,
                    labels: image_labels.into_iter().collect(),
                    containers: -1,
                    manifests: None,
                    descriptor: None,
                },
            ));
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    /// `docker history`: one entry per history step, newest first; steps that made a layer
    /// carry its size; only the top entry carries the image id and tags (`<missing>` below,
    /// as Docker prints for steps that have no local image of their own).
    pub fn history(&self, name_or_id: &str) -> Result<Vec<models::ImageHistoryResponseItem>> {
        let image = self.resolve(name_or_id)?;
        let mut items = Vec::new();
        let mut layers = image.record.layers.iter();
        for h in &image.config.history {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().map_or(0, |l| i64_of(l.size))
            };
            items.push(models::ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: unix_seconds(h.created.as_deref()),
                created_by: h.created_by.clone().unwrap_or_default(),
                tags: Vec::new(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        items.reverse();
        if let Some(top) = items.first_mut() {
            top.id = image.id.to_string();
            top.tags = image.repo_tags();
        }
        Ok(items)
    }
}

/// Unix seconds or an RFC 3339 time.
fn parse_timestamp(t: &str) -> Result<i64> {
    if let Ok(n) = t.split('.').next().unwrap_or(t).parse::<i64>() {
        return Ok(n);
    }
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp())
        .map_err(|_| Error::InvalidFilter(format!("invalid filter 'until={t}'")))
}

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/` character,
/// `[...]` a class (`^` or `!` negates, `a-z` ranges), `\` escapes. A malformed pattern
/// matches nothing.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n).unwrap_or(false)
}

fn glob_at(p: &[char], n: &[char]) -> Option<bool> {
    let Some((&first, rest)) = p.split_first() else {
        return Some(n.is_empty());
    };
    match first {
        '*' => {
            // Try every split of the non-'/' prefix of `n`.
            for i in 0..=n.len() {
                if i > 0 && n[i - 1] == '/' {
                    break;
                }
                if glob_at(rest, &n[i..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => match n.split_first() {
            Some((&c, nrest)) if c != '/' => glob_at(rest, nrest),
            _ => Some(false),
        },
        '[' => {
            let (matched, after) = class_match(rest, n.first().copied())?;
            if matched {
                glob_at(after, &n[1..])
            } else {
                Some(false)
            }
        }
        '\\' => {
            let (&lit, after) = rest.split_first()?;
            match n.split_first() {
                Some((&c, nrest)) if c == lit => glob_at(after, nrest),
                _ => Some(false),
            }
        }
        c => match n.split_first() {
            Some((&x, nrest)) if x == c => glob_at(rest, nrest),
            _ => Some(false),
        },
    }
}

/// Matches `c` against a class whose text starts after `[`; returns whether it matched and
/// the pattern after `]`. `None` for a malformed class.
fn class_match(p: &[char], c: Option<char>) -> Option<(bool, &[char])> {
    let mut i = 0;
    let negated = matches!(p.first(), Some('^' | '!'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
            i += 1;
            let h = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
    }
    let c = c?;
    if c == '/' {
        return Some((false, &p[i..]));
    }
    Some((matched != negated, &p[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        for (p, n, want) in [
            ("busybox", "busybox", true),
            ("busy*", "busybox", true),
            ("busy*", "busybox:latest", true),
            ("*", "user/app", false),
            ("*/*", "user/app", true),
            ("user/*", "user/app:1", true),
            ("b?sybox", "busybox", true),
            ("b[a-z]sybox", "busybox", true),
            ("b[^u]sybox", "busybox", false),
            ("b[!x]sybox", "busybox", true),
            ("\\*", "*", true),
            ("app:[0-9]", "app:1", true),
            ("app:[0-9]", "app:x", false),
            ("[", "a", false),
            ("", "", true),
            ("a*b*c", "axxbyyc", true),
        ] {
            assert_eq!(glob_match(p, n), want, "{p} vs {n}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert_eq!(unix_seconds(Some("2023-11-14T22:13:20.5Z")), 1_700_000_000);
        assert_eq!(unix_seconds(None), 0);
    }
}
