//! Size-prefixed framing: an INT32 size, then the frame's bytes. Kafka's size is
//! big-endian and counts the bytes after it ([`super::kafka`]); MongoDB's is
//! little-endian and counts itself ([`super::mongodb`]). The framer splits a byte stream,
//! chunked arbitrarily, into frame events without buffering frame bodies.

/// One step of a stream, in order: `Start`, any number of `Body` chunks and `Gap`s, `End`.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    Start {
        /// Body bytes to come (after the size prefix).
        size: u32,
    },
    Body(&'a [u8]),
    /// Body bytes passed over unseen (see [`Framer::pass_over`]).
    Gap(u32),
    End,
}

/// The stream cannot be framed: nothing after this point can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// A size prefix below the smallest possible message, negative, or above the limit.
    BadSize(i32),
}

#[derive(Clone, Copy, Debug)]
enum State {
    Size { bytes: [u8; 4], have: usize },
    Body { left: u32 },
}

/// How a protocol writes its size prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizePrefix {
    /// Big-endian, counting the bytes after it (Kafka).
    BigEndianBody,
    /// Little-endian, counting the whole message, itself included (MongoDB).
    LittleEndianWhole,
}

#[derive(Debug)]
pub struct Framer {
    state: State,
    prefix: SizePrefix,
    min_size: u32,
    max_size: u32,
}

impl Framer {
    /// Kafka's framing. `min_size`: the smallest valid body (a response header is 4
    /// bytes, a request header 10); `max_size`: the largest body accepted.
    pub fn new(min_size: u32, max_size: u32) -> Self {
        Framer::with_prefix(SizePrefix::BigEndianBody, min_size, max_size)
    }

    /// A framer for `prefix`; `min_size` and `max_size` bound the size as written.
    pub fn with_prefix(prefix: SizePrefix, min_size: u32, max_size: u32) -> Self {
        Framer {
            state: State::Size {
                bytes: [0; 4],
                have: 0,
            },
            prefix,
            min_size,
            max_size,
        }
    }

    /// Whether the stream is between frames.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Size { have: 0, .. })
    }

    /// Body bytes of the current frame still to come (0 between frames).
    pub fn body_left(&self) -> u32 {
        match self.state {
            State::Body { left } => left,
            State::Size { .. } => 0,
        }
    }

    /// Step over `n` body bytes, at most [`body_left`](Self::body_left), without being
    /// given them: reported as one `Gap`, then `End` if the frame is complete.
    pub fn pass_over<'a>(&mut self, n: u32, mut on: impl FnMut(FrameEvent<'a>)) -> u32 {
        let State::Body { left } = &mut self.state else {
            return 0;
        };
        let take = n.min(*left);
        if take > 0 {
            *left -= take;
            on(FrameEvent::Gap(take));
            self.end_if_complete(&mut on);
        }
        take
    }

    fn end_if_complete<'a>(&mut self, on: &mut impl FnMut(FrameEvent<'a>)) {
        if let State::Body { left: 0 } = self.state {
            on(FrameEvent::End);
            self.state = State::Size {
                bytes: [0; 4],
                have: 0,
            };
        }
    }

    pub fn feed<'a>(
        &mut self,
        mut input: &'a [u8],
        mut on: impl FnMut(FrameEvent<'a>),
    ) -> Result<(), FrameError> {
        while !input.is_empty() {
            match &mut self.state {
                State::Size { bytes, have } => {
                    let take = (4 - *have).min(input.len());
                    bytes[*have..*have + take].copy_from_slice(&input[..take]);
                    *have += take;
                    input = &input[take..];
                    if *have == 4 {
                        let (size, prefix_counted) = match self.prefix {
                            SizePrefix::BigEndianBody => (i32::from_be_bytes(*bytes), 0),
                            SizePrefix::LittleEndianWhole => (i32::from_le_bytes(*bytes), 4),
                        };
                        let valid = u32::try_from(size)
                            .ok()
                            .filter(|s| (self.min_size..=self.max_size).contains(s));
                        let Some(written) = valid else {
                            return Err(FrameError::BadSize(size));
                        };
                        // min_size >= 4 where the prefix counts itself (wire::mongodb).
                        let size = written.saturating_sub(prefix_counted);
                        on(FrameEvent::Start { size });
                        self.state = State::Body { left: size };
                    }
                }
                State::Body { left } => {
                    let take = (*left as usize).min(input.len());
                    on(FrameEvent::Body(&input[..take]));
                    *left -= take as u32;
                    input = &input[take..];
                }
            }
            self.end_if_complete(&mut on);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer, chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, |event| match event {
                FrameEvent::Start { .. } => out.push(Vec::new()),
                FrameEvent::Body(b) => out.last_mut().unwrap().extend_from_slice(b),
                FrameEvent::Gap(_) | FrameEvent::End => {}
            })?;
        }
        Ok(out)
    }

    #[test]
    fn splits_frames_at_every_chunk_boundary() {
        let mut stream = Vec::new();
        for body in [&b"abcdefghij"[..], b"0123456789xyz"] {
            stream.extend_from_slice(&(body.len() as i32).to_be_bytes());
            stream.extend_from_slice(body);
        }
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let got = frames(&mut Framer::new(4, 100), &[a, b]).unwrap();
            assert_eq!(
                got,
                vec![b"abcdefghij".to_vec(), b"0123456789xyz".to_vec()],
                "cut {cut}"
            );
        }
    }

    #[test]
    fn refuses_absurd_negative_and_tiny_sizes() {
        for size in [i32::MAX, -1, i32::MIN, 3, 101] {
            let err = frames(&mut Framer::new(4, 100), &[&size.to_be_bytes()]).unwrap_err();
            assert_eq!(err, FrameError::BadSize(size));
        }
    }

    #[test]
    fn little_endian_sizes_count_themselves() {
        let mut stream = Vec::new();
        for body in [&b"0123456789ab"[..], b"xyzw"] {
            stream.extend_from_slice(&(body.len() as i32 + 4).to_le_bytes());
            stream.extend_from_slice(body);
        }
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            let mut framer = Framer::with_prefix(SizePrefix::LittleEndianWhole, 8, 100);
            let got = frames(&mut framer, &[a, b]).unwrap();
            assert_eq!(got, vec![b"0123456789ab".to_vec(), b"xyzw".to_vec()]);
        }
        let mut framer = Framer::with_prefix(SizePrefix::LittleEndianWhole, 8, 100);
        let err = frames(&mut framer, &[&7i32.to_le_bytes()]).unwrap_err();
        assert_eq!(err, FrameError::BadSize(7));
    }

    #[test]
    fn passes_over_body_bytes_and_ends_the_frame() {
        let mut framer = Framer::new(4, 100);
        let mut events = Vec::new();
        framer
            .feed(&[0, 0, 0, 10, b'a', b'b'], |e| {
                events.push(format!("{e:?}"))
            })
            .unwrap();
        assert_eq!(framer.body_left(), 8);
        assert_eq!(framer.pass_over(5, |e| events.push(format!("{e:?}"))), 5);
        assert_eq!(framer.pass_over(9, |e| events.push(format!("{e:?}"))), 3);
        assert_eq!(framer.pass_over(9, |e| events.push(format!("{e:?}"))), 0);
        assert!(framer.at_boundary());
        assert_eq!(
            events,
            [
                "Start { size: 10 }",
                "Body([97, 98])",
                "Gap(5)",
                "Gap(3)",
                "End"
            ]
        );
    }
}
