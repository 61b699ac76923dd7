//! Streaming ANSI stripping that keeps tabs and can neither swallow nor
//! buffer unbounded output.
//!
//! `strip_ansi_escapes` does the parsing, but on its own it drops tabs, and
//! an unterminated OSC/DCS string (`ESC ]` with no BEL or ST) makes it
//! swallow everything after it, newlines included, while buffering the
//! string without limit. A small tracker in front of it ends such a string
//! at the next newline or after [`MAX_STRING`] bytes by injecting CAN, which
//! every ANSI parser treats as "abort the sequence".

use std::io::{self, Write};

/// Longest OSC/DCS/SOS/PM/APC string let through before it is cut off.
pub const MAX_STRING: usize = 4096;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;
const CAN: u8 = 0x18;
const SUB: u8 = 0x1a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    /// Inside a string sequence, with its length so far.
    String(usize),
}

/// Writes the ANSI-free text of a byte stream to `sink`.
pub struct AnsiFilter<W: Write + Clone> {
    strip: strip_ansi_escapes::Writer<W>,
    raw: W,
    state: State,
}

impl<W: Write + Clone> AnsiFilter<W> {
    /// A filter writing to `sink`.
    pub fn new(sink: W) -> Self {
        AnsiFilter {
            strip: strip_ansi_escapes::Writer::new(sink.clone()),
            raw: sink,
            state: State::Ground,
        }
    }

    /// Feeds a chunk of the stream.
    pub fn feed(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            if let State::String(n) = self.state {
                let mut cut = false;
                match b {
                    BEL | CAN | SUB => self.state = State::Ground,
                    ESC => self.state = State::Escape,
                    _ if b == b'\n' || n >= MAX_STRING => {
                        // Cut the string off; this byte is then ordinary text.
                        self.strip.write_all(&buf[start..i])?;
                        self.strip.write_all(&[CAN])?;
                        start = i;
                        self.state = State::Ground;
                        cut = true;
                    }
                    _ => self.state = State::String(n + 1),
                }
                if !cut {
                    continue;
                }
            }
            match self.state {
                State::Escape => {
                    self.state = match b {
                        b']' | b'P' | b'X' | b'^' | b'_' => State::String(0),
                        ESC => State::Escape,
                        _ => State::Ground,
                    }
                }
                State::Ground if b == ESC => self.state = State::Escape,
                State::Ground if b == b'\t' => {
                    // The parser drops tabs, so they go around it, in order.
                    self.strip.write_all(&buf[start..i])?;
                    self.strip.flush()?;
                    self.raw.write_all(b"\t")?;
                    start = i + 1;
                }
                _ => {}
            }
        }
        self.strip.write_all(&buf[start..])
    }

    /// Flushes what the parser still holds.
    pub fn finish(&mut self) -> io::Result<()> {
        self.strip.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn filter(chunks: &[&[u8]]) -> String {
        let sink = Sink::default();
        let mut f = AnsiFilter::new(sink.clone());
        for c in chunks {
            f.feed(c).unwrap();
        }
        f.finish().unwrap();
        let out = sink.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn colours_go_and_tabs_stay() {
        assert_eq!(
            filter(&[
                b"\x1b[0;32mInfo: a\tb\x1b[0m\n\x1b[1;31mErr",
                b"or: c\x1b[0m\n"
            ]),
            "Info: a\tb\nError: c\n"
        );
    }

    #[test]
    fn sequences_split_across_chunks_are_stripped() {
        assert_eq!(
            filter(&[b"x\x1b", b"[3", b"1mred\x1b]0;ti", b"tle\x07y\n"]),
            "xredy\n"
        );
    }

    #[test]
    fn an_unterminated_osc_ends_at_the_newline() {
        assert_eq!(
            filter(&[b"before\x1b]0;never ends\nafter\tx\n"]),
            "before\nafter\tx\n"
        );
    }

    #[test]
    fn a_long_osc_is_cut_and_the_rest_survives() {
        let mut input = b"\x1b]0;".to_vec();
        input.extend(std::iter::repeat_n(b'a', 100_000));
        input.extend_from_slice(b"\nEND\n");
        let out = filter(&[&input]);
        assert!(
            out.ends_with("\nEND\n"),
            "{}",
            &out[out.len().saturating_sub(50)..]
        );
        assert!(out.len() < 100_000);
    }

    #[test]
    fn a_tab_or_escape_right_after_a_cut_is_handled() {
        let mut input = b"\x1b]".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_STRING));
        input.extend_from_slice(b"\tT\x1b[1mB\n");
        assert_eq!(filter(&[&input]), "\tTB\n");
    }

    #[test]
    fn dcs_and_st_terminated_strings() {
        assert_eq!(filter(&[b"a\x1bPq#0\x1b\\b\x1b_apc\x1b\\c\n"]), "abc\n");
    }
}
