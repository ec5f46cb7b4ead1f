//! Shared by the fuzz targets: how an input is laid out, and a deterministic schedule
//! (chunk sizes, interleaving, windows) drawn from a seed inside the input, so that one
//! input always replays the same way and the fuzzer can mutate the schedule too.
//! The layouts are described in `filter/fuzz/README.md`; `scripts/fuzz-seeds.py` writes
//! seeds in them.

/// Bytes of the schedule seed in every layout.
pub const SEED_BYTES: usize = 8;

/// Split off the first `n` bytes of `data` (fewer if it is shorter).
pub fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

/// A xorshift64* generator seeded from input bytes.
pub struct Schedule(u64);

impl Schedule {
    pub fn new(seed: &[u8]) -> Self {
        let mut bytes = [0u8; 8];
        bytes[..seed.len().min(8)].copy_from_slice(&seed[..seed.len().min(8)]);
        // Any seed, zero included, gives a non-zero state.
        Schedule(u64::from_le_bytes(bytes) ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn draw(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.draw() % n as u64) as usize
        }
    }

    /// True once in `n` draws, on average.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.draw().is_multiple_of(n.max(1))
    }

    /// How many of `left` bytes the next chunk holds: mostly a few, sometimes hundreds or
    /// thousands, sometimes all that is left; at least 1 when `left` > 0.
    pub fn chunk(&mut self, left: usize) -> usize {
        let most = match self.draw() % 8 {
            0..=3 => 16,
            4 | 5 => 512,
            6 => 8192,
            _ => left,
        };
        (1 + self.below(most)).min(left)
    }
}
