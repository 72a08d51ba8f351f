//! CPU lists in the kernel's format (`0-3,8,10-11`), as found in sysfs and taken by `--cpus` and
//! the broker's `ringmqCpus` key.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::{Result, TuneError};

/// A set of logical CPU ids, kept sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet(BTreeSet<usize>);

impl CpuSet {
    /// Parses the kernel's list format. An empty string is the empty set.
    pub fn parse_list(text: &str) -> Result<Self> {
        let bad = || TuneError::CpuList(text.to_string());
        let mut cpus = BTreeSet::new();
        for part in text.trim().split(',').filter(|p| !p.trim().is_empty()) {
            let part = part.trim();
            match part.split_once('-') {
                Some((lo, hi)) => {
                    let lo: usize = lo.trim().parse().map_err(|_| bad())?;
                    let hi: usize = hi.trim().parse().map_err(|_| bad())?;
                    if lo > hi {
                        return Err(bad());
                    }
                    cpus.extend(lo..=hi);
                }
                None => {
                    cpus.insert(part.parse().map_err(|_| bad())?);
                }
            }
        }
        Ok(Self(cpus))
    }

    /// Builds a set from ids.
    pub fn from_ids(ids: impl IntoIterator<Item = usize>) -> Self {
        Self(ids.into_iter().collect())
    }

    /// Adds one CPU.
    pub fn insert(&mut self, cpu: usize) {
        self.0.insert(cpu);
    }

    /// Number of CPUs in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.0.contains(&cpu)
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().copied()
    }

    /// CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.intersection(&other.0).copied().collect())
    }

    /// CPUs in `self` but not in `other`.
    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.difference(&other.0).copied().collect())
    }

    /// Whether every CPU of `self` is in `other`.
    pub fn is_subset(&self, other: &CpuSet) -> bool {
        self.0.is_subset(&other.0)
    }
}

impl fmt::Display for CpuSet {
    /// Writes the compact kernel list form (`0-3,8`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<usize> = self.iter().collect();
        let mut parts = Vec::new();
        let mut i = 0;
        while i < ids.len() {
            let start = ids[i];
            let mut end = start;
            while i + 1 < ids.len() && ids[i + 1] == end + 1 {
                i += 1;
                end = ids[i];
            }
            parts.push(if start == end {
                start.to_string()
            } else {
                format!("{start}-{end}")
            });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl CpuSet {
    /// The list as a `ringmqCpus` / `--cpus` value: the kernel list form, except that a lone CPU
    /// gets a trailing comma (`"3,"`), because a bare number there means a count of cores.
    pub fn to_spec_string(&self) -> String {
        let list = self.to_string();
        if list.contains(['-', ',']) {
            list
        } else {
            format!("{list},")
        }
    }
}

impl Serialize for CpuSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

/// What the user gave for the broker's cores: a count or an explicit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSpec {
    /// "N": the broker takes the first N online CPUs.
    Count(usize),
    /// An explicit list.
    List(CpuSet),
}

impl CpuSpec {
    /// Parses `"4"` as a count and anything with `-` or `,` as a list (a lone id needs a
    /// trailing comma, `"3,"`, which is how the kernel's own tools disambiguate too).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if !text.contains(['-', ',']) {
            let count: usize = text
                .parse()
                .map_err(|_| TuneError::CpuList(text.to_string()))?;
            if count == 0 {
                return Err(TuneError::CpuList(text.to_string()));
            }
            return Ok(Self::Count(count));
        }
        let set = CpuSet::parse_list(text)?;
        if set.is_empty() {
            return Err(TuneError::CpuList(text.to_string()));
        }
        Ok(Self::List(set))
    }

    /// The concrete CPUs this spec means on a host with `online` CPUs. A count larger than the
    /// online set is capped to it (the check then reports the shortfall).
    pub fn resolve(&self, online: &CpuSet) -> CpuSet {
        match self {
            Self::Count(n) => CpuSet::from_ids(online.iter().take(*n)),
            Self::List(set) => set.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_cpu_is_written_as_a_list_not_a_count() {
        let one = CpuSet::from_ids([3]);
        assert_eq!(one.to_spec_string(), "3,");
        assert_eq!(
            CpuSpec::parse(&one.to_spec_string()).unwrap(),
            CpuSpec::List(one)
        );
        let many = CpuSet::from_ids([0, 1, 2, 5]);
        assert_eq!(many.to_spec_string(), "0-2,5");
        assert_eq!(
            CpuSpec::parse(&many.to_spec_string()).unwrap(),
            CpuSpec::List(many)
        );
    }

    #[test]
    fn parses_and_formats_kernel_lists() {
        let set = CpuSet::parse_list("0-3,8,10-11\n").unwrap();
        assert_eq!(set.len(), 7);
        assert!(set.contains(8) && !set.contains(9));
        assert_eq!(set.to_string(), "0-3,8,10-11");
        assert_eq!(CpuSet::parse_list("").unwrap().len(), 0);
        assert!(CpuSet::parse_list("3-1").is_err());
        assert!(CpuSet::parse_list("a").is_err());
    }

    #[test]
    fn spec_is_a_count_or_a_list() {
        let online = CpuSet::parse_list("0-7").unwrap();
        assert_eq!(
            CpuSpec::parse("3").unwrap().resolve(&online).to_string(),
            "0-2"
        );
        assert_eq!(
            CpuSpec::parse("2,5").unwrap().resolve(&online).to_string(),
            "2,5"
        );
        assert_eq!(
            CpuSpec::parse("4,").unwrap().resolve(&online).to_string(),
            "4"
        );
        assert_eq!(CpuSpec::parse("99").unwrap().resolve(&online).len(), 8);
        assert!(CpuSpec::parse("0").is_err());
        assert!(CpuSpec::parse("x").is_err());
    }
}
