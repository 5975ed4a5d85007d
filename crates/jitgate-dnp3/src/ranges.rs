//! Sorted, merged inclusive index ranges, as allow-lists keep them.

#![deny(clippy::indexing_slicing)]

use crate::parse::Indexes;

/// Inclusive `(start, end)` ranges; after [`merge`], sorted and neither overlapping nor
/// touching, so one binary search finds the only range that can contain an index.
pub type Ranges = Vec<(u16, u16)>;

/// Ranges listed in a refusal's reason before "and N more", so a grant with many ranges
/// cannot make every refusal event large.
const MAX_LISTED: usize = 16;

pub fn merge(ranges: &mut Ranges) {
    ranges.sort_unstable();
    let mut out: Ranges = Vec::with_capacity(ranges.len());
    for &(s, e) in ranges.iter() {
        match out.last_mut() {
            Some((_, last)) if u32::from(s) <= u32::from(*last) + 1 => *last = (*last).max(e),
            _ => out.push((s, e)),
        }
    }
    *ranges = out;
}

/// "0-15,20-20" (at most 16 ranges, then "and N more").
pub fn describe(ranges: &[(u16, u16)]) -> String {
    let shown: Vec<String> = ranges
        .iter()
        .take(MAX_LISTED)
        .map(|(s, e)| format!("{s}-{e}"))
        .collect();
    let mut out = shown.join(",");
    if ranges.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", ranges.len() - MAX_LISTED));
    }
    out
}

/// Whether one merged range holds all of `start..=end` (indexes past 65535 never are).
pub fn covers(ranges: &[(u16, u16)], start: u32, end: u32) -> bool {
    let (Ok(start), Ok(end)) = (u16::try_from(start), u16::try_from(end)) else {
        return false;
    };
    // Merged ranges neither overlap nor touch: only the last one starting at or before
    // `start` can contain the span.
    let after = ranges.partition_point(|&(s, _)| s <= start);
    after
        .checked_sub(1)
        .and_then(|i| ranges.get(i))
        .is_some_and(|&(_, e)| e >= end)
}

/// Whether every index a header names is covered; "all" and bare counts need 0-65535.
pub fn covers_indexes(ranges: &[(u16, u16)], indexes: &Indexes) -> bool {
    match indexes {
        Indexes::Range { start, stop } => covers(ranges, *start, *stop),
        Indexes::List(list) => list.iter().all(|&i| covers(ranges, i, i)),
        Indexes::All | Indexes::Count(_) => covers(ranges, 0, 0xFFFF),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut r = vec![
            (10, 20),
            (0, 9),
            (15, 30),
            (40, 50),
            (65535, 65535),
            (65534, 65534),
        ];
        merge(&mut r);
        assert_eq!(r, vec![(0, 30), (40, 50), (65534, 65535)]);
    }

    #[test]
    fn coverage() {
        let mut r = vec![(0, 15), (20, 20), (100, 65535)];
        merge(&mut r);
        assert!(covers(&r, 0, 15) && covers(&r, 20, 20) && covers(&r, 100, 65535));
        assert!(!covers(&r, 15, 16) && !covers(&r, 19, 20) && !covers(&r, 100, 65536));
        assert!(covers_indexes(&r, &Indexes::List(vec![3, 20, 65000])));
        assert!(!covers_indexes(&r, &Indexes::List(vec![3, 21])));
        assert!(!covers_indexes(&r, &Indexes::All));
        assert!(covers_indexes(&[(0, 65535)], &Indexes::Count(4)));
    }

    #[test]
    fn describes_at_most_sixteen() {
        let r: Ranges = (0..20u16).map(|i| (i * 3, i * 3)).collect();
        let text = describe(&r);
        assert!(text.ends_with(" and 4 more"), "{text}");
        assert_eq!(describe(&[(0, 15)]), "0-15");
    }
}
