//! Web-seed planning: an engine fetch of a stretch of the torrent's byte
//! stream becomes HTTP Range requests, one per file it spans (BEP 19), in
//! stream order, using the one piece-to-file mapping of
//! [`crate::metainfo::Info::file_slices`]. Shells only run the requests and
//! hand the bodies back as they arrive.

use std::collections::VecDeque;
use std::time::Duration;

use crate::engine::FetchId;
use crate::metainfo::Info;
use crate::sorted::SortedMap;
use crate::time::Time;

/// The shell's handle for one HTTP request, echoed with its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpId(pub u64);

/// One HTTP Range request: bytes `start..=end` of `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// The file's URL.
    pub url: String,
    /// First byte in the file.
    pub start: u64,
    /// Last byte in the file, inclusive (as HTTP Range counts).
    pub end: u64,
}

impl RangeRequest {
    /// Bytes asked for.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Never true: a request asks for at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether a response with this HTTP status carries the bytes asked
    /// for: 206 is the range; 200 is the whole file, right only when the
    /// range starts at 0 (the node cuts the body off where the range ends).
    pub fn accepts_status(&self, status: u16) -> bool {
        status == 206 || (status == 200 && self.start == 0)
    }
}

/// The requests that fetch `length` bytes at `offset` of the stream from the
/// web seed at `base`, in stream order; empty if the range is outside the
/// torrent or a file has no URL.
pub fn plan(info: &Info, base: &str, offset: u64, length: u64) -> Vec<RangeRequest> {
    info.file_slices(offset, length)
        .into_iter()
        .filter_map(|slice| {
            Some(RangeRequest {
                url: info.web_seed_url(base, slice.file)?,
                start: slice.offset,
                end: slice.offset + slice.length - 1,
            })
        })
        .collect()
}

/// What happened to a request, for the node to pass on to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Bytes for the engine's fetch.
    Data(FetchId, Vec<u8>),
    /// Start this request next (the fetch's next file).
    Next(HttpId, RangeRequest),
    /// The fetch is over: complete, or short (the engine knows which).
    End(FetchId),
}

#[derive(Debug)]
struct Running {
    fetch: FetchId,
    request: RangeRequest,
    received: u64,
    rest: VecDeque<RangeRequest>,
    /// When it started or last delivered a byte.
    heard: Time,
}

/// Requests in flight, each one part of an engine fetch.
#[derive(Debug, Default)]
pub(super) struct HttpTable {
    running: SortedMap<HttpId, Running>,
    next: u64,
}

impl HttpTable {
    /// Starts the fetch's first request; `None` when the plan is empty.
    pub fn start(
        &mut self,
        now: Time,
        fetch: FetchId,
        mut plan: VecDeque<RangeRequest>,
    ) -> Option<(HttpId, RangeRequest)> {
        let request = plan.pop_front()?;
        Some(self.run(now, fetch, request, plan))
    }

    fn run(
        &mut self,
        now: Time,
        fetch: FetchId,
        request: RangeRequest,
        rest: VecDeque<RangeRequest>,
    ) -> (HttpId, RangeRequest) {
        self.next += 1;
        let id = HttpId(self.next);
        self.running.insert(
            id,
            Running {
                fetch,
                request: request.clone(),
                received: 0,
                rest,
                heard: now,
            },
        );
        (id, request)
    }

    /// Body bytes of `id`; anything past the range asked for is dropped
    /// (a server that ignores Range is cut off at what we wanted).
    pub fn data(&mut self, now: Time, id: HttpId, bytes: &[u8]) -> Option<Step> {
        let r = self.running.get_mut(&id)?;
        r.heard = now;
        let room = r.request.len() - r.received;
        let take = (bytes.len() as u64).min(room) as usize;
        if take == 0 {
            return None;
        }
        r.received += take as u64;
        Some(Step::Data(r.fetch, bytes[..take].to_vec()))
    }

    /// `id`'s body ended: the next file's request if this one was whole,
    /// else the end of the fetch (short, so the engine backs off).
    pub fn end(&mut self, now: Time, id: HttpId) -> Option<Step> {
        let mut r = self.running.remove(&id)?;
        if r.received == r.request.len()
            && let Some(next) = r.rest.pop_front()
        {
            let (id, request) = self.run(now, r.fetch, next, r.rest);
            return Some(Step::Next(id, request));
        }
        Some(Step::End(r.fetch))
    }

    /// `id` failed: the fetch is over.
    pub fn fail(&mut self, id: HttpId) -> Option<FetchId> {
        self.running.remove(&id).map(|r| r.fetch)
    }

    /// Ends fetch `fetch`'s requests (its next files are dropped too);
    /// returns the ones that were running, for the shell to cancel.
    pub fn cancel_fetch(&mut self, fetch: FetchId) -> Vec<HttpId> {
        let ids: Vec<HttpId> = self
            .running
            .iter()
            .filter(|(_, r)| r.fetch == fetch)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            self.running.remove(id);
        }
        ids
    }

    /// Every request in flight (to cancel when leaving).
    pub fn ids(&self) -> Vec<HttpId> {
        self.running.keys().copied().collect()
    }

    /// Requests that have delivered nothing for `timeout` at `now`.
    pub fn stalled(&self, now: Time, timeout: Duration) -> Vec<HttpId> {
        self.running
            .iter()
            .filter(|(_, r)| now.since(r.heard) >= timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The earliest time a request turns stalled.
    pub fn next_stall(&self, timeout: Duration) -> Option<Time> {
        self.running.values().map(|r| r.heard + timeout).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::FileEntry;

    fn info(files: &[(&[&str], u64)]) -> Info {
        let mut offset = 0;
        let files = files
            .iter()
            .map(|(path, length)| {
                let f = FileEntry {
                    path: path.iter().map(|s| s.to_string()).collect(),
                    length: *length,
                    offset,
                };
                offset += length;
                f
            })
            .collect();
        Info {
            name: "album".into(),
            piece_length: 16384,
            pieces: vec![[0; 20]],
            files,
            private: false,
        }
    }

    #[test]
    fn a_fetch_across_files_is_one_request_per_file_in_order() {
        let album = info(&[
            (&["album", "a.mp3"], 100),
            (&["album", "empty"], 0),
            (&["album", "cd 2", "b.mp3"], 100),
        ]);
        let plan = plan(&album, "http://h/media", 90, 20);
        assert_eq!(
            plan,
            vec![
                RangeRequest {
                    url: "http://h/media/album/a.mp3".into(),
                    start: 90,
                    end: 99
                },
                RangeRequest {
                    url: "http://h/media/album/cd%202/b.mp3".into(),
                    start: 0,
                    end: 9
                },
            ]
        );
        assert!(super::plan(&album, "http://h/", 500, 10).is_empty());
        let mut one = info(&[(&["x"], 1000)]);
        one.files[0].path = vec!["album".into()];
        let single = super::plan(&one, "http://h/media/x.mp3", 990, 50);
        assert_eq!((single[0].start, single[0].end), (990, 999), "clipped");
    }

    #[test]
    fn requests_run_one_after_another_and_overlong_bodies_are_cut() {
        let album = info(&[(&["album", "a"], 100), (&["album", "b"], 100)]);
        let mut table = HttpTable::default();
        let fetch = FetchId(7);
        let (first, r) = table
            .start(Time(0), fetch, plan(&album, "http://h/", 90, 20).into())
            .expect("a plan");
        assert_eq!((r.start, r.end), (90, 99));
        assert_eq!(
            table.data(Time(1), first, &[1; 25]),
            Some(Step::Data(fetch, vec![1; 10])),
            "a server that ignored Range is cut off"
        );
        assert_eq!(table.data(Time(2), first, &[1]), None);
        let Some(Step::Next(second, r)) = table.end(Time(3), first) else {
            panic!("the second file follows");
        };
        assert_eq!((r.url.as_str(), r.start, r.end), ("http://h/album/b", 0, 9));
        assert_eq!(
            table.data(Time(4), second, &[2; 4]),
            Some(Step::Data(fetch, vec![2; 4]))
        );
        assert_eq!(
            table.end(Time(5), second),
            Some(Step::End(fetch)),
            "short: over"
        );
        assert_eq!(table.end(Time(6), second), None);
        assert_eq!(table.fail(HttpId(99)), None);
    }

    #[test]
    fn a_request_stalls_when_it_delivers_nothing_for_the_timeout() {
        let album = info(&[(&["album", "a"], 100)]);
        let mut table = HttpTable::default();
        let timeout = Duration::from_secs(30);
        let (id, _) = table
            .start(
                Time(0),
                FetchId(1),
                plan(&album, "http://h/", 0, 100).into(),
            )
            .expect("a plan");
        assert_eq!(table.next_stall(timeout), Some(Time(30_000)));
        table.data(Time(20_000), id, &[1; 10]);
        assert!(
            table.stalled(Time(49_999), timeout).is_empty(),
            "it spoke at 20 s"
        );
        assert_eq!(table.next_stall(timeout), Some(Time(50_000)));
        assert_eq!(table.stalled(Time(50_000), timeout), vec![id]);
    }

    #[test]
    fn a_full_response_is_accepted_only_for_a_range_from_the_start() {
        let range = |start| RangeRequest {
            url: "http://h/a".into(),
            start,
            end: start + 9,
        };
        assert!(range(5).accepts_status(206));
        assert!(
            range(0).accepts_status(200),
            "the whole file, cut by the node"
        );
        assert!(
            !range(5).accepts_status(200),
            "the whole file from byte 0: wrong bytes"
        );
        assert!(!range(0).accepts_status(416));
    }
}
