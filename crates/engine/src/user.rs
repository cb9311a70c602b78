//! Resolving Docker's `User` ("name", "uid", "name:group", "uid:gid") against the container's
//! /etc/passwd and /etc/group, as dockerd does before starting the process.

use std::path::Path;

use crate::error::{Error, Result};

/// uid, gid and supplementary gids of the container's process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: Option<String>,
}

fn entries(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

/// Resolves `user` with the rootfs's account files; empty means root.
pub fn resolve(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let passwd = entries(&rootfs.join("etc/passwd"));
    let groups = entries(&rootfs.join("etc/group"));
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let account = passwd
        .iter()
        .find(|e| e.len() >= 4 && (e[0] == user_part || e[2] == user_part));
    let (uid, mut gid, name, home) = match (account, user_part.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse().unwrap_or(0),
            e[3].parse().unwrap_or(0),
            Some(e[0].clone()),
            e.get(5).cloned(),
        ),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => {
            return Err(Error::invalid(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )));
        }
    };
    if let Some(group) = group_part {
        gid = match groups
            .iter()
            .find(|e| e.len() >= 3 && (e[0] == group || e[2] == group))
        {
            Some(e) => e[2].parse().unwrap_or(0),
            None => group.parse().map_err(|_| {
                Error::invalid(format!(
                    "unable to find group {group}: no matching entries in group file"
                ))
            })?,
        };
    }
    let additional_gids = match &name {
        Some(name) => groups
            .iter()
            .filter(|e| e.len() >= 4 && e[3].split(',').any(|member| member == name))
            .filter_map(|e| e[2].parse().ok())
            .filter(|g| *g != gid)
            .collect(),
        None => Vec::new(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_numbers_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n").unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nweb:x:1000:\naudio:x:29:web\n",
        )
        .unwrap();
        assert_eq!(resolve(dir.path(), "").unwrap().uid, 0);
        let web = resolve(dir.path(), "web").unwrap();
        assert_eq!(
            (web.uid, web.gid, web.additional_gids.clone()),
            (1000, 1000, vec![29])
        );
        assert_eq!(
            resolve(dir.path(), "1234:29").unwrap(),
            ResolvedUser {
                uid: 1234,
                gid: 29,
                additional_gids: vec![],
                home: None
            }
        );
        assert_eq!(resolve(dir.path(), "nobody:audio").unwrap().gid, 29);
        assert!(resolve(dir.path(), "ghost").is_err());
        assert!(resolve(dir.path(), "web:ghosts").is_err());
    }
}
