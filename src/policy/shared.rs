//! One copy of each string the policies of a snapshot repeat.
//!
//! Ten thousand policies say `eci:describe*`, `acs:eci:*:*:containergroup/*`,
//! `StringEquals` and `eci:tag/env` over and over; each would otherwise be its own small
//! allocation (32 bytes with the allocator's header) for as long as the snapshot lives.
//! [`sharing`] turns sharing on for the compiles it runs, on this thread only, so the
//! compiler's signatures stay as they are and nothing is shared between snapshots.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;

thread_local! {
    static TABLE: RefCell<Option<HashSet<Arc<str>>>> = const { RefCell::new(None) };
}

/// Runs `compile` with strings shared: equal strings made through [`text`] inside it are
/// one allocation. A nested call shares the outer call's table.
pub fn sharing<R>(compile: impl FnOnce() -> R) -> R {
    /// Drops the table when the outermost call ends, even if `compile` panics.
    struct End(bool);
    impl Drop for End {
        fn drop(&mut self) {
            if self.0 {
                TABLE.with(|t| *t.borrow_mut() = None);
            }
        }
    }
    let outermost = TABLE.with(|t| {
        let mut table = t.borrow_mut();
        let outermost = table.is_none();
        if outermost {
            *table = Some(HashSet::new());
        }
        outermost
    });
    let _end = End(outermost);
    compile()
}

/// `s` as a shared string: the table's copy inside [`sharing`], a new one outside it.
pub fn text(s: &str) -> Arc<str> {
    TABLE.with(|t| match t.borrow_mut().as_mut() {
        Some(table) => match table.get(s) {
            Some(shared) => shared.clone(),
            None => {
                let shared: Arc<str> = Arc::from(s);
                table.insert(shared.clone());
                shared
            }
        },
        None => Arc::from(s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_copy_only_while_sharing() {
        let (a, b) = sharing(|| (text("eci:describe*"), text("eci:describe*")));
        assert!(Arc::ptr_eq(&a, &b));
        let (c, d) = (text("eci:describe*"), text("eci:describe*"));
        assert!(!Arc::ptr_eq(&c, &d));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, *a);
    }

    #[test]
    fn nested_sharing_uses_the_outer_table_and_restores_it() {
        let (outer, inner) = sharing(|| {
            let outer = text("StringEquals");
            let inner = sharing(|| text("StringEquals"));
            (outer, inner)
        });
        assert!(Arc::ptr_eq(&outer, &inner));
        assert!(TABLE.with(|t| t.borrow().is_none()));
    }
}
