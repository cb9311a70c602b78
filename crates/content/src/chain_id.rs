//! ChainIDs: the identity of a stack of layers (OCI image spec, config.md, "Layer ChainID"):
//!
//! ```text
//! ChainID(L0)   = DiffID(L0)
//! ChainID(L0|...|Ln) = Digest(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))
//! ```
//!
//! where the digest is sha256 over the ASCII string forms of the two digests joined by one
//! space. A snapshot of an applied stack is keyed by its ChainID, so stacks that share a
//! prefix of layers share the snapshots of that prefix.

use types::Digest;

use crate::hash::sha256_digest;

/// The ChainID of `diff_id` applied on top of the stack whose ChainID is `parent`.
pub fn next_chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
    }
}

/// The ChainIDs of every prefix of a stack of layers given by their DiffIDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = next_chain_id(out.last(), diff_id);
        out.push(next);
    }
    out
}

/// The ChainID of a whole stack; `None` for an empty stack.
pub fn chain_id(diff_ids: &[Digest]) -> Option<Digest> {
    chain_ids(diff_ids).pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(hex_char: char) -> Digest {
        format!("sha256:{}", hex_char.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn follows_the_spec_formula() {
        let (a, b, c) = (d('a'), d('b'), d('c'));
        assert_eq!(chain_id(&[]), None);
        assert_eq!(chain_id(std::slice::from_ref(&a)), Some(a.clone()));
        let ab = sha256_digest(format!("{a} {b}").as_bytes());
        assert_eq!(chain_id(&[a.clone(), b.clone()]), Some(ab.clone()));
        let abc = sha256_digest(format!("{ab} {c}").as_bytes());
        assert_eq!(
            chain_ids(&[a.clone(), b.clone(), c.clone()]),
            vec![a.clone(), ab.clone(), abc.clone()]
        );
        assert_eq!(next_chain_id(Some(&ab), &c), abc);
    }

    #[test]
    fn known_value() {
        // Computed independently: printf '%s %s' sha256:aaa.. sha256:bbb.. | sha256sum
        let got = chain_id(&[d('a'), d('b')]).unwrap();
        assert_eq!(
            got.encoded(),
            "ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
        );
    }
}
