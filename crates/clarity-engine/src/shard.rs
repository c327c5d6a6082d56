//! Shards of a sweep: `--shard i/N` runs the content keys that fall in shard `i` of `N`.
//!
//! A key is BLAKE3 output, so its first 8 bytes are uniform: shard `i` takes the keys whose
//! leading 64 bits `x` satisfy `floor(x * N / 2^64) = i` (N equal ranges of the key space).
//! Runs sharing a key land in the same shard; which shard does not depend on the plan order,
//! the cohort order or the machine.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Most shards a sweep may be split into.
pub const MAX_SHARDS: u32 = 1 << 20;

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the shard count must be in 1..={MAX_SHARDS}, got {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "the shard index must be below the count ({count}), got {index} (shards are numbered from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard a content key (32 bytes) belongs to, of `count`.
    pub fn of(key: &[u8; 32], count: u32) -> u32 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&key[..8]);
        let x = u64::from_be_bytes(b) as u128;
        ((x * count as u128) >> 64) as u32
    }

    /// Whether `key` falls in this shard.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        Shard::of(key, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `i/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, e.g. 0/4"))?;
        let parse = |t: &str, what: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{s}`: the {what} `{t}` is not a non-negative integer"))
        };
        Shard::new(parse(i, "index")?, parse(n, "count")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_errors() {
        assert_eq!(
            "2/7".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 7 }
        );
        assert!(
            "7/7"
                .parse::<Shard>()
                .unwrap_err()
                .contains("below the count")
        );
        assert!("0/0".parse::<Shard>().unwrap_err().contains("shard count"));
        assert!("a/2".parse::<Shard>().unwrap_err().contains("index `a`"));
        assert!("3".parse::<Shard>().unwrap_err().contains("INDEX/COUNT"));
    }

    #[test]
    fn every_key_in_exactly_one_shard_and_balanced() {
        for n in [1u32, 2, 3, 7] {
            let mut counts = vec![0usize; n as usize];
            for i in 0..7000u32 {
                let k: [u8; 32] = *blake3::hash(&i.to_le_bytes()).as_bytes();
                let owners: Vec<u32> = (0..n)
                    .filter(|&s| Shard { index: s, count: n }.contains(&k))
                    .collect();
                assert_eq!(owners.len(), 1);
                counts[owners[0] as usize] += 1;
            }
            let mean = 7000.0 / n as f64;
            for c in counts {
                assert!((c as f64 - mean).abs() < 0.1 * mean + 30.0, "{n}: {c}");
            }
        }
    }
}
