//! A parallel map that skips the thread pool when there is nothing to share out.

use rayon::prelude::*;

/// `f` of every item, in order: on rayon's pool, or on the calling thread when there is at most
/// one item. Handing work to the pool and waiting for it costs two thread wake-ups, more than
/// the work of a short document, and one item gains nothing from the pool.
///
/// ```
/// use bltpatch_core::par_map;
///
/// assert_eq!(par_map(&[1, 2, 3], |x| x * 10), vec![10, 20, 30]);
/// assert_eq!(par_map(&["one"], |s| s.len()), vec![3]);
/// ```
pub fn par_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync + Send) -> Vec<U> {
    match items {
        [] => Vec::new(),
        [one] => vec![f(one)],
        _ => items.par_iter().map(f).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::par_map;

    #[test]
    fn keeps_the_order_and_runs_one_item_on_the_calling_thread() {
        let items: Vec<usize> = (0..1000).collect();
        assert_eq!(
            par_map(&items, |&x| x * x),
            items.iter().map(|&x| x * x).collect::<Vec<_>>()
        );
        assert!(par_map(&[] as &[usize], |&x| x).is_empty());
        let caller = std::thread::current().id();
        assert_eq!(par_map(&[7], |_| std::thread::current().id()), vec![caller]);
    }
}
