//! Fingerprints of a loaded configuration, for live reload: one for the mapping rules (the
//! `topics` section, which a reload may replace) and one per other section (which need a
//! restart). Taken from the tree as it was read — after `MCM_BRIDGE__…` overrides and `${VAR}`
//! interpolation, before any default is filled in — so a reload compares what the operator
//! wrote, and a process flag such as `run --dry-run` never reads as a change.

use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The sections outside `topics`, in the order a restart notice names them.
pub const SECTIONS: [&str; 5] = ["kafka", "mcm", "delivery", "observe", "schema_registry"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// The mapping rules' hash: 12 hex digits of the SHA-256 of the `topics` section, the label
    /// of `mapping_info`.
    pub topics: String,
    /// Each other section's SHA-256 (hex). Secrets read from files are folded in by the caller
    /// ([`Fingerprint::fold_secret`]): a rotated key file is a change too.
    pub sections: BTreeMap<&'static str, String>,
}

impl Fingerprint {
    /// The fingerprint of `root` (the whole configuration tree).
    pub fn of(root: &Value) -> Fingerprint {
        let section = |name: &str| root.get(name).cloned().unwrap_or(Value::Null);
        let topics = digest(&section("topics"));
        Fingerprint {
            topics: topics[..12].to_string(),
            sections: SECTIONS
                .iter()
                .map(|name| (*name, digest(&section(name))))
                .collect(),
        }
    }

    /// Mixes `secret` (e.g. the API key read from `api_key_file`) into `section`'s hash without
    /// keeping it: only the digest of both is stored.
    pub fn fold_secret(&mut self, section: &'static str, secret: &str) {
        let before = self.sections.get(section).cloned().unwrap_or_default();
        let mut h = Sha256::new();
        h.update(before.as_bytes());
        h.update([0]);
        h.update(secret.as_bytes());
        self.sections.insert(section, hex(&h.finalize()));
    }

    /// Mixes the contents of a file the mapping rules read (a block's `schema_file:`) into the
    /// rules' hash: an edited schema file is a change a reload must pick up.
    pub fn fold_topics_file(&mut self, contents: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.topics.as_bytes());
        h.update([0]);
        h.update(contents);
        self.topics = hex(&h.finalize())[..12].to_string();
    }

    /// The sections outside `topics` whose settings differ between `self` and `other`.
    pub fn changed_sections(&self, other: &Fingerprint) -> Vec<&'static str> {
        SECTIONS
            .iter()
            .copied()
            .filter(|s| self.sections.get(s) != other.sections.get(s))
            .collect()
    }
}

fn digest(v: &Value) -> String {
    // serde_yaml_ng writes a mapping in its insertion order, which is the file's: reordering
    // keys reads as a change, which at worst costs a needless reload, never a missed one.
    let text = serde_yaml_ng::to_string(v).unwrap_or_default();
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("test YAML: {e}"))
    }

    const BASE: &str = "kafka: {group_id: g}\nmcm: {api_key: k}\ntopics: [{topic: a}]\n";

    #[test]
    fn a_schema_files_contents_change_the_rules_hash() {
        let of = |contents: &[u8]| {
            let mut f = Fingerprint::of(&tree(BASE));
            f.fold_topics_file(contents);
            f
        };
        let (a, b) = (of(b"{\"type\":\"long\"}"), of(b"{\"type\":\"int\"}"));
        assert_ne!(a.topics, b.topics);
        assert_eq!(a.topics.len(), 12);
        assert_eq!(a, of(b"{\"type\":\"long\"}"));
        assert!(a.changed_sections(&b).is_empty(), "only the rules changed");
    }

    #[test]
    fn a_rule_change_moves_only_the_topics_hash() {
        let a = Fingerprint::of(&tree(BASE));
        let b = Fingerprint::of(&tree(&BASE.replace("topic: a", "topic: b")));
        assert_ne!(a.topics, b.topics);
        assert_eq!(a.topics.len(), 12);
        assert!(a.changed_sections(&b).is_empty());
        assert_eq!(a, Fingerprint::of(&tree(BASE)));
    }

    #[test]
    fn a_section_change_is_named() {
        let a = Fingerprint::of(&tree(BASE));
        let b = Fingerprint::of(&tree(&BASE.replace("group_id: g", "group_id: h")));
        assert_eq!(a.topics, b.topics);
        assert_eq!(a.changed_sections(&b), vec!["kafka"]);
        // A section that appears where it was absent is a change too.
        let c = Fingerprint::of(&tree(&format!("{BASE}observe: {{listen: '0.0.0.0:1'}}\n")));
        assert_eq!(a.changed_sections(&c), vec!["observe"]);
    }

    #[test]
    fn a_rotated_key_file_is_a_change_of_mcm() {
        let mut a = Fingerprint::of(&tree(BASE));
        let mut b = a.clone();
        a.fold_secret("mcm", "old");
        b.fold_secret("mcm", "new");
        assert_eq!(a.changed_sections(&b), vec!["mcm"]);
        assert!(!a.sections["mcm"].contains("old"));
    }
}
