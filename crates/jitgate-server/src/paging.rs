//! Pages of the lists: what a caller asks for ([`PageRequest`]: after which item, how many),
//! the opaque cursor naming where the next page starts, and [`Collector`], which fills a
//! page from rows read in batches while the visibility rules drop rows.
//!
//! Every list is read by **keyset**: the cursor names the last item of the previous page
//! and the next page starts just after it in the list's order (in the store,
//! `jitgate_store`'s `page` module). Rows inserted meanwhile neither shift a page nor show
//! twice. A caller who may see few rows still gets full pages: hidden rows are skipped, never
//! counted, and a next cursor is given only when at least one more visible item exists, so
//! neither a short page nor the cursor tells anything about rows the caller may not see.
//! A cursor always names an item the caller was shown.

use crate::error::ServerError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jitgate_core::codes::Code;

/// Where a page starts and how long it is, checked against `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The key of the last item of the previous page (`None`: the first page).
    pub after: Option<String>,
    /// Items in the page (1..=`max_page_size`).
    pub limit: usize,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }

    /// Rows to read from the store at once while filling a page: one more than the page,
    /// so a caller who sees every row costs one query, and at least a few dozen, so one who
    /// sees few rows does not cost a query per row.
    pub fn batch(&self) -> i64 {
        (self.limit.saturating_add(1)).max(50) as i64
    }
}

/// A page of a list: its items, and whether a next page holds any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub more: bool,
}

/// Fills a page from rows read in batches: push what the caller may see until
/// [`Collector::is_full`] (one item more than the page, which proves a next page exists).
#[derive(Debug)]
pub struct Collector<T> {
    limit: usize,
    items: Vec<T>,
}

impl<T> Collector<T> {
    pub fn new(page: &PageRequest) -> Self {
        Collector {
            limit: page.limit,
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) {
        self.items.push(item);
    }

    /// The page and one more item are here: stop reading.
    pub fn is_full(&self) -> bool {
        self.items.len() > self.limit
    }

    pub fn finish(mut self) -> Paged<T> {
        let more = self.items.len() > self.limit;
        self.items.truncate(self.limit);
        Paged {
            items: self.items,
            more,
        }
    }
}

/// One page of `items`, a whole list held in memory (the inventory, gateways, sessions):
/// sorted by `key`, the page starts after the item whose key the cursor names, whether or
/// not that item still exists.
pub fn page_of<T>(page: &PageRequest, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Paged<T> {
    items.sort_by_key(|i| key(i));
    let start = match &page.after {
        Some(after) => items.partition_point(|i| key(i).as_str() <= after.as_str()),
        None => 0,
    };
    let mut c = Collector::new(page);
    for item in items.into_iter().skip(start) {
        c.push(item);
        if c.is_full() {
            break;
        }
    }
    c.finish()
}

/// The cursor naming `key` in the list `list` (e.g. `requests`): opaque to clients.
pub fn encode_cursor(list: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}\n{key}"))
}

/// The key a cursor of `list` names; [`invalid_cursor`] if it is garbled or of another list.
pub fn decode_cursor(list: &str, cursor: &str) -> Result<String, ServerError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| invalid_cursor(list))?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_cursor(list))?;
    match text.split_once('\n') {
        Some((l, key)) if l == list && !key.is_empty() => Ok(key.to_string()),
        _ => Err(invalid_cursor(list)),
    }
}

/// The answer to a cursor this list did not give out (or that names an item the caller
/// may not see: the same answer, so a cursor cannot probe for hidden items).
pub fn invalid_cursor(list: &str) -> ServerError {
    ServerError::Limit {
        code: Code::InvalidCursor,
        message: format!(
            "this cursor was not given out by GET /{list}; start again without `cursor` and \
             follow the `x-next-cursor` header of each page"
        ),
    }
}

/// Keys made of several parts (a time and an id) joined so that they sort as the list does.
pub fn joined_key(parts: &[&str]) -> String {
    parts.join("\u{1f}")
}

/// The parts of a [`joined_key`].
pub fn split_key(key: &str, n: usize) -> Option<Vec<String>> {
    let parts: Vec<String> = key.split('\u{1f}').map(str::to_string).collect();
    (parts.len() == n).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_lists_and_garbage() {
        let c = encode_cursor("requests", "req_1");
        assert_eq!(decode_cursor("requests", &c).unwrap(), "req_1");
        assert!(decode_cursor("grants", &c).is_err());
        for bad in ["", "!!", "cmVxdWVzdHM", "zz%"] {
            let e = decode_cursor("requests", bad).unwrap_err();
            assert_eq!(e.code(), Code::InvalidCursor, "{bad:?}");
        }
    }

    #[test]
    fn pages_in_memory_follow_the_keys_and_ignore_inserts_before_the_cursor() {
        let page = |after: Option<&str>| PageRequest {
            after: after.map(str::to_string),
            limit: 2,
        };
        let items = vec!["d", "a", "c", "b", "e"];
        let p1 = page_of(&page(None), items.clone(), |s| s.to_string());
        assert_eq!(p1.items, ["a", "b"]);
        assert!(p1.more);
        // "aa" arrives before the cursor: not shown, nothing shown twice.
        let mut later = items.clone();
        later.push("aa");
        let p2 = page_of(&page(Some("b")), later, |s| s.to_string());
        assert_eq!(p2.items, ["c", "d"]);
        assert!(p2.more);
        let p3 = page_of(&page(Some("d")), items.clone(), |s| s.to_string());
        assert_eq!(p3.items, ["e"]);
        assert!(!p3.more);
        // The cursor's item is gone: the page still starts after its place.
        let gone: Vec<&str> = items.into_iter().filter(|s| *s != "b").collect();
        assert_eq!(
            page_of(&page(Some("b")), gone, |s| s.to_string()).items,
            ["c", "d"]
        );
    }
}
