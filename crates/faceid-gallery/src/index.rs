//! The 1:N index: every template as a contiguous row of int8 codes (one scale per row),
//! scanned on all cores for the best candidates, which the caller then re-ranks exactly
//! with the float templates. Int8 quarters the memory of f32 (512 bytes a template) and the
//! scan stays a tight, vectorisable integer loop.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;

/// A candidate row from a scan: the caller's tag, its subject and the approximate cosine.
#[derive(Debug, Clone, PartialEq)]
pub struct RowHit {
    /// The tag given when the row was added (the gallery's template number).
    pub tag: u64,
    /// Subject of the row.
    pub subject: Arc<str>,
    /// Approximate cosine from the int8 codes.
    pub approx_cosine: f32,
}

/// Quantised rows of unit vectors.
#[derive(Debug, Default)]
pub struct QuantizedIndex {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    tags: Vec<u64>,
    subjects: Vec<Arc<str>>,
}

/// Symmetric per-vector int8 quantisation: `v ~ code * scale`.
pub fn quantize(vector: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = vector.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(
        vector
            .iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Written so the compiler vectorises it (widening multiply-add).
    let mut sum = 0i32;
    for (x, y) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        let mut partial = 0i32;
        for k in 0..16 {
            partial += i32::from(x[k]) * i32::from(y[k]);
        }
        sum += partial;
    }
    let tail = a.len() - a.len() % 16;
    sum + a[tail..]
        .iter()
        .zip(&b[tail..])
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum::<i32>()
}

#[derive(PartialEq)]
struct Scored(f32, usize);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap's top is the *worst* kept candidate.
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

impl QuantizedIndex {
    /// An empty index for vectors of `dim` dimensions.
    pub fn new(dim: usize) -> QuantizedIndex {
        QuantizedIndex {
            dim,
            ..QuantizedIndex::default()
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes held by the rows (codes, scales, tags; subject names are shared).
    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity()
            + self.scales.capacity() * 4
            + self.tags.capacity() * 8
            + self.subjects.capacity() * 16
    }

    /// Reserves room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        self.codes.reserve(rows * self.dim);
        self.scales.reserve(rows);
        self.tags.reserve(rows);
        self.subjects.reserve(rows);
    }

    /// Adds a row. Vectors of another dimension are ignored (templates are checked upstream).
    pub fn add(&mut self, tag: u64, subject: Arc<str>, vector: &[f32]) {
        if vector.len() != self.dim {
            return;
        }
        let scale = quantize(vector, &mut self.codes);
        self.scales.push(scale);
        self.tags.push(tag);
        self.subjects.push(subject);
    }

    /// Removes every row of `subject`; returns how many.
    pub fn remove_subject(&mut self, subject: &str) -> usize {
        let before = self.len();
        let mut write = 0;
        for read in 0..self.len() {
            if &*self.subjects[read] == subject {
                continue;
            }
            if write != read {
                self.codes
                    .copy_within(read * self.dim..(read + 1) * self.dim, write * self.dim);
                self.scales[write] = self.scales[read];
                self.tags[write] = self.tags[read];
                self.subjects.swap(write, read);
            }
            write += 1;
        }
        self.codes.truncate(write * self.dim);
        self.scales.truncate(write);
        self.tags.truncate(write);
        self.subjects.truncate(write);
        before - write
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.codes.clear();
        self.scales.clear();
        self.tags.clear();
        self.subjects.clear();
    }

    /// The `k` rows with the highest approximate cosine to `query`, best first, scanning
    /// with up to `threads` threads.
    pub fn search(&self, query: &[f32], k: usize, threads: usize) -> Vec<RowHit> {
        if query.len() != self.dim || self.is_empty() || k == 0 {
            return Vec::new();
        }
        let mut q = Vec::with_capacity(self.dim);
        let q_scale = quantize(query, &mut q);
        let rows = self.len();
        let threads = threads.clamp(1, 16).min(rows.div_ceil(4096).max(1));
        let chunk = rows.div_ceil(threads);
        let scan = |start: usize, end: usize| -> BinaryHeap<Scored> {
            let mut heap = BinaryHeap::with_capacity(k + 1);
            for row in start..end {
                let codes = &self.codes[row * self.dim..(row + 1) * self.dim];
                let score = dot_i8(codes, &q) as f32 * self.scales[row];
                if heap.len() < k {
                    heap.push(Scored(score, row));
                } else if heap.peek().is_some_and(|worst| score > worst.0) {
                    heap.pop();
                    heap.push(Scored(score, row));
                }
            }
            heap
        };
        let heaps: Vec<BinaryHeap<Scored>> = if threads == 1 {
            vec![scan(0, rows)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let (start, end) = (t * chunk, ((t + 1) * chunk).min(rows));
                        s.spawn(move || scan(start, end))
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            })
        };
        let mut all: Vec<Scored> = heaps.into_iter().flat_map(BinaryHeap::into_vec).collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        all.truncate(k);
        all.into_iter()
            .map(|Scored(score, row)| RowHit {
                tag: self.tags[row],
                subject: self.subjects[row].clone(),
                approx_cosine: score * q_scale,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, dim: usize) -> Vec<f32> {
        // xorshift + Box-Muller-free: uniform in [-1, 1] is enough for a unit direction test.
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    #[test]
    fn int8_dot_matches_float_cosine_closely() {
        let (a, b) = (unit(1, 512), unit(2, 512));
        let (mut qa, mut qb) = (Vec::new(), Vec::new());
        let (sa, sb) = (quantize(&a, &mut qa), quantize(&b, &mut qb));
        let approx = dot_i8(&qa, &qb) as f32 * sa * sb;
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((approx - exact).abs() < 0.01, "{approx} vs {exact}");
    }

    #[test]
    fn search_finds_the_nearest_row_on_any_thread_count() {
        let mut index = QuantizedIndex::new(64);
        for i in 0..10_000u64 {
            index.add(i, Arc::from(format!("s{}", i % 5000)), &unit(i + 100, 64));
        }
        let target = unit(4321 + 100, 64);
        for threads in [1, 2, 3] {
            let hits = index.search(&target, 5, threads);
            assert_eq!(hits.len(), 5);
            assert_eq!(hits[0].tag, 4321, "threads {threads}");
            assert!(
                hits.windows(2)
                    .all(|w| w[0].approx_cosine >= w[1].approx_cosine)
            );
        }
    }

    #[test]
    fn removing_a_subject_removes_all_its_rows_and_keeps_the_rest_searchable() {
        let mut index = QuantizedIndex::new(32);
        for i in 0..100u64 {
            index.add(
                i,
                Arc::from(if i % 10 == 3 { "gone" } else { "kept" }),
                &unit(i, 32),
            );
        }
        assert_eq!(index.remove_subject("gone"), 10);
        assert_eq!(index.len(), 90);
        let hits = index.search(&unit(57, 32), 1, 1);
        assert_eq!(hits[0].tag, 57);
        assert!(
            index
                .search(&unit(13, 32), 90, 2)
                .iter()
                .all(|h| &*h.subject == "kept")
        );
        index.clear();
        assert!(index.search(&unit(1, 32), 3, 1).is_empty());
    }
}
