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

    /// Appends `v` in decimal.
    #[inline]
    pub fn number(&mut self, v: u64) {
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
fn write_decimal(mut v: u64, out: &mut [u8; 20]) -> usize {
    let mut i = out.len();
    // Eight digits at a time in 32-bit arithmetic, which divides faster than 64-bit.
    while v >= 100_000_000 {
        let mut low = (v % 100_000_000) as u32; // < 10^8: fits u32.
        v /= 100_000_000;
        for _ in 0..4 {
            let pair = 2 * (low % 100) as usize;
            low /= 100;
            i -= 2;
            out[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
    }
    let mut v = v as u32; // < 10^8 here.
    while v >= 100 {
        let pair = 2 * (v % 100) as usize;
        v /= 100;
        i -= 2;
        out[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if v >= 10 {
        let pair = 2 * v as usize;
        i -= 2;
        out[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        out[i] = b'0' + v as u8;
    }
    i
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
    }
}
