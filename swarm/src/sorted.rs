//! Ordered maps and sets over one sorted `Vec`: [`SortedMap`] and
//! [`SortedSet`], with the part of `BTreeMap`/`BTreeSet`'s API this
//! workspace uses, under the same names; and [`sort_keys`], the one sort
//! the engine's rankings share.
//!
//! Why not `BTreeMap`: every key/value pair a B-tree is instantiated with
//! brings its own copy of node splitting, merging, stealing and dropping,
//! ~4–5 KB of wasm each; with twenty such maps on the browser's path that was
//! ~98 KB, the largest single item of the bundle. A sorted `Vec` is a binary
//! search and a `memmove`, a few hundred bytes per instantiation, and every
//! map here is small (peers, offers, requests in flight, partial pieces).
//!
//! Iteration is in key order, exactly as `BTreeMap`'s, so swapping one for
//! the other changes no behaviour: the simulator replays the same runs.
//! Insertion and removal are O(n) moves; keep it to maps of at most a few
//! thousand entries.

use std::borrow::Borrow;
use std::fmt;

/// Sorts rank keys ascending. The engine's rankings (eviction order, which
/// peer requests first, rarest first, choking) each map their items to
/// `(key, key, id)` and sort through this one function: each distinct
/// `sort_by_key` was its own ~3 KB instantiation of the standard sort in
/// the browser's wasm. With the item's id last, no two keys are equal, so
/// the order is fully determined and stability does not matter: a stable
/// sort by the first two keys of items listed in id order gives the same.
#[inline(never)]
pub fn sort_keys(keys: &mut [(u64, u64, u64)]) {
    keys.sort_unstable();
}

/// A map ordered by key, stored as a sorted `Vec` of pairs.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

/// A set ordered by value, stored as a sorted `Vec`.
#[derive(Clone, PartialEq, Eq)]
pub struct SortedSet<T> {
    items: Vec<T>,
}

impl<K, V> SortedMap<K, V> {
    /// An empty map (allocates nothing).
    pub const fn new() -> Self {
        SortedMap {
            entries: Vec::new(),
        }
    }

    /// Entries in the map.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Pairs in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Pairs in key order, values mutable.
    pub fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + ExactSizeIterator {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator + Clone {
        self.entries.iter().map(|(_, v)| v)
    }

    /// Values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut V> + ExactSizeIterator {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    /// Keys in order, the map consumed.
    pub fn into_keys(self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator {
        self.entries.into_iter().map(|(k, _)| k)
    }

    /// Values in key order, the map consumed.
    pub fn into_values(self) -> impl DoubleEndedIterator<Item = V> + ExactSizeIterator {
        self.entries.into_iter().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` says true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// The entry with the smallest key.
    pub fn first_key_value(&self) -> Option<(&K, &V)> {
        self.entries.first().map(|(k, v)| (k, v))
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop_first(&mut self) -> Option<(K, V)> {
        (!self.entries.is_empty()).then(|| self.entries.remove(0))
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    /// Where `key` is (`Ok`) or would go (`Err`).
    fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.find(key).ok()?;
        self.entries.get(at).map(|(_, v)| v)
    }

    /// The value of `key`, mutable.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.find(key).ok()?;
        self.entries.get_mut(at).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(key).is_ok()
    }

    /// Sets the value of `key`; returns the one it replaced (the key stays
    /// the one first inserted, as `BTreeMap` does).
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(at) => self
                .entries
                .get_mut(at)
                .map(|(_, old)| std::mem::replace(old, value)),
            Err(at) => {
                self.entries.insert(at, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let at = self.find(key).ok()?;
        Some(self.entries.remove(at).1)
    }

    /// The value of `key`, to read or to fill in.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let at = self.find(&key);
        Entry {
            entries: &mut self.entries,
            key,
            at,
        }
    }
}

/// A key of a [`SortedMap`] and where its value is or would go.
pub struct Entry<'a, K, V> {
    entries: &'a mut Vec<(K, V)>,
    key: K,
    at: Result<usize, usize>,
}

impl<'a, K, V> Entry<'a, K, V> {
    /// The value, inserting `value` first if there was none.
    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    /// The value, inserting `make()` first if there was none.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let Entry { entries, key, at } = self;
        let at = match at {
            Ok(at) => at,
            Err(at) => {
                entries.insert(at, (key, make()));
                at
            }
        };
        // In bounds: the key was found at `at` or has just been inserted there.
        &mut entries[at].1
    }

    /// The value, inserting `V::default()` first if there was none.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for SortedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Ord, V> Extend<(K, V)> for SortedMap<K, V> {
    /// Inserts one by one (a later value for the same key wins): no sort is
    /// instantiated, and the maps this fills are small.
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut map = SortedMap::new();
        map.extend(pairs);
        map
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a, K, V> IntoIterator for &'a SortedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<'a, K, V> IntoIterator for &'a mut SortedMap<K, V> {
    type Item = (&'a K, &'a mut V);
    type IntoIter =
        std::iter::Map<std::slice::IterMut<'a, (K, V)>, fn(&'a mut (K, V)) -> (&'a K, &'a mut V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }
}

impl<T> SortedSet<T> {
    /// An empty set (allocates nothing).
    pub const fn new() -> Self {
        SortedSet { items: Vec::new() }
    }

    /// Values in the set.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// No values.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Values in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// Keeps the values for which `keep` says true.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    /// The smallest value.
    pub fn first(&self) -> Option<&T> {
        self.items.first()
    }
}

impl<T: Ord> SortedSet<T> {
    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.items
            .binary_search_by(|v| v.borrow().cmp(value))
            .is_ok()
    }

    /// Adds `value`; false if it was there already (and is kept).
    pub fn insert(&mut self, value: T) -> bool {
        match self.items.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false if it was not there.
    pub fn remove<Q>(&mut self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.items.binary_search_by(|v| v.borrow().cmp(value)) {
            Ok(at) => {
                self.items.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for SortedSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: Ord> Extend<T> for SortedSet<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        for v in values {
            self.insert(v);
        }
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let mut set = SortedSet::new();
        set.extend(values);
        set
    }
}

impl<T> IntoIterator for SortedSet<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Random operations on a `SortedMap` and a `BTreeMap` side by side:
    /// same answers, same contents in the same order after every step.
    #[test]
    fn behaves_as_btreemap() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let keys = 1 + round % 40;
            let mut ours = SortedMap::new();
            let mut model = BTreeMap::new();
            for step in 0..300u32 {
                let k = rng.u32(..keys);
                match rng.u8(..8) {
                    0 | 1 => assert_eq!(ours.insert(k, step), model.insert(k, step)),
                    2 => assert_eq!(ours.remove(&k), model.remove(&k)),
                    3 => assert_eq!(ours.get(&k), model.get(&k)),
                    4 => {
                        if let (Some(a), Some(b)) = (ours.get_mut(&k), model.get_mut(&k)) {
                            *a += 1;
                            *b += 1;
                        }
                        assert_eq!(ours.contains_key(&k), model.contains_key(&k));
                    }
                    5 => {
                        *ours.entry(k).or_default() += 3;
                        *model.entry(k).or_default() += 3;
                    }
                    6 => {
                        ours.retain(|key, v| (key + *v) % 3 != 0);
                        model.retain(|key, v| (key + *v) % 3 != 0);
                    }
                    _ => assert_eq!(ours.pop_first(), model.pop_first()),
                }
                assert_eq!(ours.len(), model.len());
                assert!(ours.iter().eq(model.iter()));
                assert_eq!(ours.first_key_value(), model.first_key_value());
            }
            assert!(ours.clone().into_iter().eq(model.clone()));
            assert!(ours.keys().rev().eq(model.keys().rev()));
            for v in ours.values_mut() {
                *v *= 2;
            }
            for v in model.values_mut() {
                *v *= 2;
            }
            for (k, v) in &mut ours {
                *v += k;
            }
            for (k, v) in &mut model {
                *v += k;
            }
            assert!(ours.values().eq(model.values()));
            assert!((&ours).into_iter().eq(&model));
        }
    }

    /// What the rankings rely on: ids listed in ascending order, sorted
    /// stably by two keys, come out as `sort_keys` puts `(key, key, id)`.
    #[test]
    fn sort_keys_is_a_stable_sort_of_ids_in_order() {
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..500 {
            let len = rng.usize(..60);
            let ranks: Vec<(u64, u64)> = (0..len).map(|_| (rng.u64(..4), rng.u64(..4))).collect();
            let mut stable: Vec<u64> = (0..len as u64).collect();
            stable.sort_by_key(|&id| ranks[id as usize]);
            let mut keys: Vec<(u64, u64, u64)> = (0..len as u64)
                .map(|id| (ranks[id as usize].0, ranks[id as usize].1, id))
                .collect();
            sort_keys(&mut keys);
            assert!(keys.iter().map(|k| k.2).eq(stable));
        }
    }

    #[test]
    fn collecting_keeps_the_last_value_of_a_key_and_sorts() {
        let ours: SortedMap<u8, char> = [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd')].into();
        let model: BTreeMap<u8, char> = [(3, 'a'), (1, 'b'), (3, 'c'), (2, 'd')].into();
        assert!(ours.iter().eq(model.iter()));
        assert_eq!(format!("{ours:?}"), format!("{model:?}"));
        let empty: SortedMap<String, u8> = SortedMap::default();
        assert!(empty.is_empty());
        assert_eq!(empty.get("x"), None);
    }

    #[test]
    fn set_behaves_as_btreeset() {
        let mut rng = fastrand::Rng::with_seed(8);
        let mut ours = SortedSet::new();
        let mut model = BTreeSet::new();
        for _ in 0..5_000 {
            let v = rng.u16(..300);
            match rng.u8(..4) {
                0 | 1 => assert_eq!(ours.insert(v), model.insert(v)),
                2 => assert_eq!(ours.remove(&v), model.remove(&v)),
                _ => assert_eq!(ours.contains(&v), model.contains(&v)),
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.first(), model.first());
        }
        assert!(ours.iter().eq(model.iter()));
        ours.retain(|v| v % 2 == 0);
        model.retain(|v| v % 2 == 0);
        assert!(ours.into_iter().eq(model));
        let collected: SortedSet<u8> = [5, 1, 5, 3].into_iter().collect();
        assert_eq!(format!("{collected:?}"), "{1, 3, 5}");
    }
}
