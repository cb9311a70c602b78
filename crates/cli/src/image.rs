//! Image commands: images / image ls, rmi, tag, history, import, load, save, image prune.

use std::io::IsTerminal;

use clap::Args;
use client::{BodyReader, Client, reader_body};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::app::{CmdResult, Failure, confirm, describe, parse_filters};
use crate::format::{
    self, HISTORY_FORMAT, IMAGES_DIGESTS_FORMAT, IMAGES_FORMAT, history_headers, image_headers,
};
use crate::options::split_repo_tag;
use crate::units::human_size;

/// `images`.
#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Repository[:tag] to list
    pub reference: Option<String>,
}

/// `rmi`.
#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Images
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `tag`.
#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

/// `history`.
#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Image
    pub image: String,
}

/// `import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Tarball file, or "-" for STDIN
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

/// `load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// `save`.
#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Images
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `image prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// Prints a JSON message stream (pull, import, load): `stream` text as is, `status` lines,
/// and fails on an `error` message. Returns the last `status`.
pub async fn print_progress(body: BodyReader, to_stderr: bool) -> Result<Option<String>, Failure> {
    let mut lines = BufReader::new(body).lines();
    let mut last = None;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(err) = msg.get("error").and_then(|e| e.as_str()) {
            return Err(Failure::new(err.to_string()));
        }
        let text = if let Some(s) = msg.get("stream").and_then(|s| s.as_str()) {
            s.to_string()
        } else if let Some(s) = msg.get("status").and_then(|s| s.as_str()) {
            last = Some(s.to_string());
            match msg.get("id").and_then(|i| i.as_str()) {
                Some(id) => format!("{id}: {s}\n"),
                None => format!("{s}\n"),
            }
        } else {
            continue;
        };
        if to_stderr {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }
    Ok(last)
}

/// `images`.
pub async fn images(c: &Client, a: ImagesArgs) -> CmdResult {
    let mut filters = parse_filters(&a.filter)?;
    if let Some(r) = &a.reference {
        filters
            .entry("reference".into())
            .or_default()
            .push(r.clone());
    }
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") => if a.digests {
                IMAGES_DIGESTS_FORMAT
            } else {
                IMAGES_FORMAT
            }
            .to_string(),
            Some(f) => f.to_string(),
        }
    };
    let list = c.image_list(a.all, a.digests, &filters).await?;
    let now = format::now_unix();
    let mut rows: Vec<Value> = Vec::new();
    for img in &list {
        rows.extend(format::image_rows(
            img,
            !a.no_trunc,
            a.digests || format.contains(".Digest"),
            now,
        ));
    }
    if a.quiet {
        // docker prints each ID once in quiet mode.
        let mut seen = std::collections::HashSet::new();
        rows.retain(|r| seen.insert(r["ID"].as_str().unwrap_or_default().to_string()));
    }
    print!(
        "{}",
        format::render(&format, &rows, &image_headers(), true)?
    );
    Ok(0)
}

/// `rmi` / `image rm`: prints "Untagged: ..." and "Deleted: ..." lines.
pub async fn rmi(c: &Client, a: RmiArgs) -> CmdResult {
    let mut failed = false;
    for name in &a.images {
        match c.image_remove(name, a.force, a.no_prune).await {
            Ok(items) => {
                for i in items {
                    if let Some(u) = i.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = i.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", describe(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `tag`.
pub async fn tag(c: &Client, a: TagArgs) -> CmdResult {
    let (repo, tag) = split_repo_tag(&a.target);
    c.image_tag(&a.source, &repo, &tag).await?;
    Ok(0)
}

/// `history`.
pub async fn history(c: &Client, a: HistoryArgs) -> CmdResult {
    let items = c.image_history(&a.image).await?;
    let format = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("") | Some("table") if a.human => HISTORY_FORMAT.to_string(),
            // Without -H docker shows the absolute time in the CREATED AT column.
            None | Some("") | Some("table") => {
                HISTORY_FORMAT.replace(".CreatedSince", ".CreatedAt")
            }
            Some(f) => f.to_string(),
        }
    };
    let now = format::now_unix();
    let rows: Vec<Value> = items
        .iter()
        .map(|h| format::history_row(h, !a.no_trunc, a.human, now))
        .collect();
    print!(
        "{}",
        format::render(&format, &rows, &history_headers(), true)?
    );
    Ok(0)
}

async fn open_input(path: Option<&str>) -> Result<client::RequestBody, Failure> {
    match path {
        None | Some("-") => Ok(reader_body(tokio::io::stdin())),
        Some(p) => {
            let f = tokio::fs::File::open(p)
                .await
                .map_err(|e| Failure::new(format!("open {p}: {e}")))?;
            Ok(reader_body(f))
        }
    }
}

/// `import`: prints the new image's ID.
pub async fn import(c: &Client, a: ImportArgs) -> CmdResult {
    if a.file.contains("://") {
        return Err(Failure::new("importing from a URL is not supported"));
    }
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let (repo, tag) = split_repo_tag(r);
            (Some(repo), Some(tag).filter(|t| !t.is_empty()))
        }
        None => (None, None),
    };
    let body = open_input(Some(a.file.as_str())).await?;
    let progress = c
        .image_import(
            body,
            repo.as_deref(),
            tag.as_deref(),
            &a.change,
            a.message.as_deref(),
        )
        .await?;
    print_progress(progress, false).await?;
    Ok(0)
}

/// `load`: prints "Loaded image: ..." lines.
pub async fn load(c: &Client, a: LoadArgs) -> CmdResult {
    if a.input.is_none() && std::io::stdin().is_terminal() {
        return Err(Failure::new(
            "requested load from stdin, but stdin is empty",
        ));
    }
    let body = open_input(a.input.as_deref()).await?;
    let quiet = a.quiet || !std::io::stdout().is_terminal();
    let progress = c.image_load(body, quiet).await?;
    print_progress(progress, false).await?;
    Ok(0)
}

/// `save`: a tar archive to `-o FILE` or to a non-terminal stdout.
pub async fn save(c: &Client, a: SaveArgs) -> CmdResult {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Failure::new(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut body = c.image_save(&a.images).await?;
    match &a.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no partial file.
            let tmp = format!("{path}.berth-tmp");
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| Failure::new(format!("failed to save image: {e}")))?;
            let r = tokio::io::copy(&mut body, &mut f).await;
            if let Err(e) = r.and(f.flush().await) {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(Failure::new(format!("failed to save image: {e}")));
            }
            tokio::fs::rename(&tmp, path).await?;
        }
        None => {
            let mut out = tokio::io::stdout();
            tokio::io::copy(&mut body, &mut out).await?;
            out.flush().await?;
        }
    }
    Ok(0)
}

/// `image prune`.
pub async fn prune(c: &Client, a: PruneArgs) -> CmdResult {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut filters = parse_filters(&a.filter)?;
    filters.insert("dangling".into(), vec![(!a.all).to_string()]);
    let r = c.image_prune(&filters).await?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for i in deleted {
            if let Some(u) = i.untagged {
                println!("untagged: {u}");
            }
            if let Some(d) = i.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(0)
}
