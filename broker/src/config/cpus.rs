//! The `--cpus` / `ringmqCpus` value: which cores the broker runs its shards on.
//!
//! Two spellings: a **count** (`4`: the first four cores this process may run on) or a **list**
//! (`0-3,6`: exactly those cores). A bare number is always a count; to name one core write it as
//! a range (`3-3`) or with a comma (`3,`).

use std::fmt;

/// What the user asked for; resolved against the cores the process may use at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuSpec {
    /// The first `n` cores of the process's affinity mask.
    Count(usize),
    /// These cores, in ascending order, without duplicates.
    List(Vec<usize>),
}

/// Largest core id accepted in a list (a typo guard, far above any real machine).
const CPU_ID_MAX: usize = 4095;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuSpecError {
    #[error("empty cpu spec")]
    Empty,
    #[error("cpu count must be at least 1")]
    ZeroCount,
    #[error("`{0}` is not a core id, a range `a-b` or a count")]
    BadItem(String),
    #[error("range `{0}` runs backwards")]
    BackwardRange(String),
    #[error("core id {0} is above {CPU_ID_MAX}")]
    TooLarge(usize),
    #[error("asked for {wanted} cores but this process may use only {available}")]
    NotEnoughCores { wanted: usize, available: usize },
    #[error("core {0} is not in this process's affinity mask")]
    CoreNotAvailable(usize),
}

impl CpuSpec {
    /// Parses `4`, `0-3,6`, `3-3` or `3,`.
    pub fn parse(text: &str) -> Result<CpuSpec, CpuSpecError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(CpuSpecError::Empty);
        }
        if !text.contains([',', '-']) {
            let count: usize = text
                .parse()
                .map_err(|_| CpuSpecError::BadItem(text.to_string()))?;
            if count == 0 {
                return Err(CpuSpecError::ZeroCount);
            }
            return Ok(CpuSpec::Count(count));
        }
        let mut cores = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (first, last) = match item.split_once('-') {
                Some((a, b)) => (parse_core(a.trim(), item)?, parse_core(b.trim(), item)?),
                None => {
                    let core = parse_core(item, item)?;
                    (core, core)
                }
            };
            if last < first {
                return Err(CpuSpecError::BackwardRange(item.to_string()));
            }
            cores.extend(first..=last);
        }
        if cores.is_empty() {
            return Err(CpuSpecError::Empty);
        }
        cores.sort_unstable();
        cores.dedup();
        Ok(CpuSpec::List(cores))
    }

    /// The concrete cores to pin shards to, given the cores the process may use (ascending).
    pub fn resolve(&self, available: &[usize]) -> Result<Vec<usize>, CpuSpecError> {
        match self {
            CpuSpec::Count(n) => {
                if *n > available.len() {
                    return Err(CpuSpecError::NotEnoughCores {
                        wanted: *n,
                        available: available.len(),
                    });
                }
                Ok(available[..*n].to_vec())
            }
            CpuSpec::List(cores) => {
                if let Some(missing) = cores.iter().find(|c| !available.contains(c)) {
                    return Err(CpuSpecError::CoreNotAvailable(*missing));
                }
                Ok(cores.clone())
            }
        }
    }
}

fn parse_core(text: &str, item: &str) -> Result<usize, CpuSpecError> {
    let core: usize = text
        .parse()
        .map_err(|_| CpuSpecError::BadItem(item.to_string()))?;
    if core > CPU_ID_MAX {
        return Err(CpuSpecError::TooLarge(core));
    }
    Ok(core)
}

impl fmt::Display for CpuSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuSpec::Count(n) => write!(f, "{n}"),
            CpuSpec::List(cores) => {
                let text: Vec<String> = cores.iter().map(|c| format!("{c}-{c}")).collect();
                write!(f, "{}", text.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_and_lists() {
        assert_eq!(CpuSpec::parse("2"), Ok(CpuSpec::Count(2)));
        assert_eq!(
            CpuSpec::parse("0-3,6"),
            Ok(CpuSpec::List(vec![0, 1, 2, 3, 6]))
        );
        assert_eq!(CpuSpec::parse("3-3"), Ok(CpuSpec::List(vec![3])));
        assert_eq!(CpuSpec::parse(" 3, "), Ok(CpuSpec::List(vec![3])));
        assert_eq!(CpuSpec::parse("1,0,1"), Ok(CpuSpec::List(vec![0, 1])));
    }

    #[test]
    fn bad_specs() {
        assert_eq!(CpuSpec::parse(""), Err(CpuSpecError::Empty));
        assert_eq!(CpuSpec::parse("0"), Err(CpuSpecError::ZeroCount));
        assert_eq!(CpuSpec::parse(","), Err(CpuSpecError::Empty));
        assert!(matches!(
            CpuSpec::parse("a-b"),
            Err(CpuSpecError::BadItem(_))
        ));
        assert!(matches!(
            CpuSpec::parse("3-1"),
            Err(CpuSpecError::BackwardRange(_))
        ));
        assert_eq!(CpuSpec::parse("9999,"), Err(CpuSpecError::TooLarge(9999)));
        assert!(matches!(
            CpuSpec::parse("-1"),
            Err(CpuSpecError::BadItem(_))
        ));
    }

    #[test]
    fn resolve_against_the_affinity_mask() {
        let available = [0, 1, 4, 5];
        assert_eq!(CpuSpec::Count(3).resolve(&available), Ok(vec![0, 1, 4]));
        assert_eq!(
            CpuSpec::Count(5).resolve(&available),
            Err(CpuSpecError::NotEnoughCores {
                wanted: 5,
                available: 4
            })
        );
        assert_eq!(
            CpuSpec::List(vec![1, 4]).resolve(&available),
            Ok(vec![1, 4])
        );
        assert_eq!(
            CpuSpec::List(vec![2]).resolve(&available),
            Err(CpuSpecError::CoreNotAvailable(2))
        );
    }

    #[test]
    fn display_round_trips() {
        for spec in [CpuSpec::Count(3), CpuSpec::List(vec![0, 2, 3])] {
            assert_eq!(CpuSpec::parse(&spec.to_string()), Ok(spec));
        }
    }
}
