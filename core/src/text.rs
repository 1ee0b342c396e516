//! Text written on the hot path (`RL.APPLY`'s arguments), without `core::fmt` and, up to its
//! inline capacity, without allocating: numbers in decimal, two digits at a time from a
//! table, into a buffer on the stack that moves to the heap only when it outgrows it (a long
//! SLIDING log sent whole).
//!
//! PURE: no Redis types here.

/// A byte string built on the stack, spilling to the heap past `N` bytes.
#[derive(Clone, Debug)]
pub struct Text<const N: usize> {
    inline: [u8; N],
    len: usize,
    heap: Option<Vec<u8>>,
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Self::new()
    }
}

const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

impl<const N: usize> Text<N> {
    pub fn new() -> Self {
        Text {
            inline: [0; N],
            len: 0,
            heap: None,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &self.heap {
            Some(v) => v,
            None => self.inline.get(..self.len).unwrap_or(&[]),
        }
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn push(&mut self, b: u8) {
        match (&mut self.heap, self.inline.get_mut(self.len)) {
            (None, Some(slot)) => {
                *slot = b;
                self.len += 1;
            }
            _ => self.extend(&[b]),
        }
    }

    #[inline]
    pub fn extend(&mut self, bytes: &[u8]) {
        if let Some(v) = &mut self.heap {
            v.extend_from_slice(bytes);
            return;
        }
        let end = self.len + bytes.len();
        match self.inline.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            None => {
                let mut v = Vec::with_capacity(2 * end);
                v.extend_from_slice(self.inline.get(..self.len).unwrap_or(&[]));
                v.extend_from_slice(bytes);
                self.heap = Some(v);
            }
        }
    }

    /// Appends `v` in decimal: straight into the inline buffer when it has room for any
    /// number (then the copy is of a fixed size).
    #[inline]
    pub fn number(&mut self, v: u64) {
        if self.heap.is_none() {
            let room = self.inline.get_mut(self.len..);
            if let Some(dst) = room.and_then(|r| r.first_chunk_mut::<20>()) {
                self.len += write_left(v, dst);
                return;
            }
        }
        self.extend(Digits::of(v).as_bytes());
    }

    /// Appends a copy of the bytes at `range` of what is written so far.
    pub fn repeat(&mut self, range: std::ops::Range<usize>) {
        let end = self.len + range.len();
        match (&mut self.heap, end <= N && range.end <= self.len) {
            (None, true) => {
                self.inline.copy_within(range, self.len);
                self.len = end;
            }
            _ => {
                let copy: Vec<u8> = self.as_bytes().get(range).unwrap_or(&[]).to_vec();
                self.extend(&copy);
            }
        }
    }
}

/// The decimal digits of a number, on the stack (to write the same number twice).
pub struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    #[inline]
    pub fn of(v: u64) -> Digits {
        let mut buf = [0u8; 20];
        let start = write_decimal(v, &mut buf);
        Digits { buf, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }
}

/// Writes `v` in decimal at the end of `out`; returns where the digits start.
fn write_decimal(v: u64, out: &mut [u8; 20]) -> usize {
    let mut left = [0u8; 20];
    let count = write_left(v, &mut left);
    let start = out.len() - count; // count <= 20
    if let (Some(dst), Some(src)) = (out.get_mut(start..), left.get(..count)) {
        dst.copy_from_slice(src);
    }
    start
}

/// Writes `v` in decimal at the start of `out`; returns how many digits it has. Four digits
/// per division, from the last: `v` has at most 20.
#[inline]
fn write_left(mut v: u64, out: &mut [u8; 20]) -> usize {
    let count = v.checked_ilog10().map_or(1, |l| l as usize + 1).min(20); // ilog10 < 20
    let pair = |p: u64| {
        let at = 2 * (p as usize % 100);
        [
            PAIRS.get(at).copied().unwrap_or(b'0'),
            PAIRS.get(at + 1).copied().unwrap_or(b'0'),
        ]
    };
    let mut i = count;
    while i >= 4 {
        let rem = v % 10_000;
        v /= 10_000;
        let ([a, b], [c, d]) = (pair(rem / 100), pair(rem % 100));
        if let Some(dst) = out.get_mut(i - 4..i) {
            dst.copy_from_slice(&[a, b, c, d]);
        }
        i -= 4;
    }
    match i {
        3 => {
            let [b, c] = pair(v % 100);
            if let Some(dst) = out.get_mut(..3) {
                dst.copy_from_slice(&[b'0' + (v / 100) as u8, b, c]); // v < 1000
            }
        }
        2 => {
            if let Some(dst) = out.get_mut(..2) {
                dst.copy_from_slice(&pair(v));
            }
        }
        1 => {
            if let Some(d) = out.first_mut() {
                *d = b'0' + v as u8; // v < 10
            }
        }
        _ => {}
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn numbers_are_written_in_decimal() {
        for v in [
            0u64,
            7,
            10,
            99,
            100,
            101,
            99_999_999,
            100_000_000,
            1_700_000_000_123,
            u64::MAX,
        ] {
            let mut t = Text::<64>::new();
            t.number(v);
            assert_eq!(t.as_bytes(), v.to_string().as_bytes());
        }
    }

    #[test]
    fn a_long_text_moves_to_the_heap_intact() {
        let mut t = Text::<8>::new();
        let mut want = String::new();
        for v in 0..100u64 {
            t.number(v);
            t.push(b',');
            want.push_str(&format!("{v},"));
        }
        assert_eq!(t.as_bytes(), want.as_bytes());
    }

    proptest! {
        #[test]
        fn every_u64_is_written_as_display_writes_it(v in any::<u64>()) {
            let mut t = Text::<24>::new();
            t.number(v);
            let want = v.to_string();
            prop_assert_eq!(t.as_bytes(), want.as_bytes());
        }

        /// Numbers written across the end of the inline buffer (where fewer than 20 bytes
        /// are left, and past it) come out as `Display` writes them.
        #[test]
        fn numbers_across_the_inline_end_are_intact(vs in prop::collection::vec(any::<u64>(), 0..12)) {
            let mut t = Text::<48>::new();
            let mut want = String::new();
            for v in vs {
                t.number(v >> (v % 64));
                t.push(b' ');
                want.push_str(&format!("{} ", v >> (v % 64)));
            }
            prop_assert_eq!(t.as_bytes(), want.as_bytes());
        }
    }
}
