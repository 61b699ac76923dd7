//! Puppet's output, kept within a fixed budget whatever puppet prints: the
//! first half and the last half of the budget, around a truncation line.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// Upper bound of `_output`, in bytes.
pub const OUTPUT_CAP: usize = 1024 * 1024;

/// Room kept free for the truncation line.
const MARKER_ROOM: usize = 256;

/// Keeps the head and the tail of a byte stream.
#[derive(Debug)]
pub struct CappedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    head_cap: usize,
    tail_cap: usize,
    total: u64,
}

impl Default for CappedOutput {
    fn default() -> Self {
        Self::with_cap(OUTPUT_CAP)
    }
}

impl CappedOutput {
    /// A buffer whose rendering never exceeds `cap` bytes.
    pub fn with_cap(cap: usize) -> Self {
        let body = cap.saturating_sub(MARKER_ROOM);
        CappedOutput {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap: body / 2,
            tail_cap: body - body / 2,
            total: 0,
        }
    }

    /// Appends bytes.
    pub fn push(&mut self, mut buf: &[u8]) {
        self.total += buf.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(buf.len());
            self.head.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
        }
        if buf.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&buf[buf.len() - self.tail_cap..]);
        } else {
            let overflow = (self.tail.len() + buf.len()).saturating_sub(self.tail_cap);
            self.tail.drain(..overflow);
            self.tail.extend(buf);
        }
    }

    /// Bytes pushed so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept text; invalid UTF-8 (including characters cut at the
    /// truncation point) becomes U+FFFD.
    pub fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let (tail_a, tail_b) = self.tail.as_slices();
        let mut tail = Vec::with_capacity(self.tail.len());
        tail.extend_from_slice(tail_a);
        tail.extend_from_slice(tail_b);
        if kept == self.total {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        let mut head = self.head.as_slice();
        // Cut at character boundaries so the seam holds no U+FFFD.
        while let Some(&b) = head.last().filter(|b| **b >= 0x80) {
            head = &head[..head.len() - 1];
            if b >= 0xC0 {
                break;
            }
        }
        let mut tail = tail.as_slice();
        while tail.first().is_some_and(|b| (0x80..0xC0).contains(b)) {
            tail = &tail[1..];
        }
        let omitted = self.total - (head.len() + tail.len()) as u64;
        let mut out = String::from_utf8_lossy(head).into_owned();
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "[psick: output truncated: {omitted} of {} bytes omitted; this is the head and the tail]\n",
            self.total
        ));
        out.push_str(&String::from_utf8_lossy(tail));
        out
    }
}

/// A `Write` handle onto a shared [`CappedOutput`], so the supervising
/// thread can take what was read even if the reader never finishes.
#[derive(Debug, Clone, Default)]
pub struct SharedOutput(pub Arc<Mutex<CappedOutput>>);

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedOutput {
    /// The kept text so far.
    pub fn render(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut c = CappedOutput::with_cap(1000);
        c.push(b"hello ");
        c.push("w\u{f6}rld\n".as_bytes());
        assert_eq!(c.render(), "hello w\u{f6}rld\n");
    }

    #[test]
    fn exactly_the_budget_is_not_truncated() {
        let mut c = CappedOutput::with_cap(1256);
        c.push(&[b'a'; 1000]);
        assert_eq!(c.render().len(), 1000);
        c.push(b"b");
        assert!(
            c.render()
                .contains("output truncated: 1 of 1001 bytes omitted")
        );
    }

    #[test]
    fn long_output_keeps_head_and_tail_under_the_cap() {
        let mut c = CappedOutput::with_cap(1256);
        for i in 0..10_000 {
            c.push(format!("line {i}\n").as_bytes());
        }
        let r = c.render();
        assert!(r.len() <= 1256, "{}", r.len());
        assert!(r.starts_with("line 0\nline 1\n"));
        assert!(r.ends_with("line 9999\n"));
        assert!(r.contains("[psick: output truncated: "));
    }

    #[test]
    fn one_huge_write_and_cut_characters() {
        let mut c = CappedOutput::with_cap(356);
        c.push("\u{e9}".repeat(1000).as_bytes());
        let r = c.render();
        assert!(r.len() <= 356);
        assert!(!r.contains('\u{fffd}'), "{r}");
        assert!(r.starts_with('\u{e9}') && r.ends_with('\u{e9}'));
    }
}
