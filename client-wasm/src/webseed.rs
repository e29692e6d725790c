//! The HTTP web seed (BEP 19 `url-list`): turns an engine fetch of a stretch
//! of the torrent's byte stream into HTTP Range requests, file by file.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

use swarm::metainfo::Info;

use crate::js::{JsError, js_error};

/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One HTTP request of a web-seed fetch: bytes `start..=end` of `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRequest {
    /// The file's URL.
    pub url: String,
    /// First byte in the file.
    pub start: u64,
    /// Last byte in the file, inclusive (as HTTP Range counts).
    pub end: u64,
}

/// The requests that fetch `length` bytes at `offset` of the stream from the
/// web seed at `base`, in stream order.
///
/// BEP 19: a single-file torrent's URL names the file itself unless it ends
/// in `/`, when the torrent name is appended; a multi-file torrent's files
/// live under `base/name/…`.
pub fn plan_ranges(info: &Info, base: &str, offset: u64, length: u32) -> Vec<RangeRequest> {
    let end = offset.saturating_add(u64::from(length));
    let mut out = Vec::new();
    for file in &info.files {
        let file_end = file.offset.saturating_add(file.length);
        if file_end <= offset || file.offset >= end || file.length == 0 {
            continue;
        }
        let start = offset.max(file.offset) - file.offset;
        let last = end.min(file_end) - file.offset - 1;
        out.push(RangeRequest {
            url: file_url(info, base, &file.path),
            start,
            end: last,
        });
    }
    out
}

/// Fetches every range of a plan and concatenates the bodies; a response
/// that is not exactly the bytes asked for is an error.
pub async fn fetch_ranges(plan: &[RangeRequest]) -> Result<Vec<u8>, JsError> {
    let mut data = Vec::new();
    for range in plan {
        let bytes = fetch_range(range).await?;
        let expected = range.end - range.start + 1;
        if bytes.len() as u64 != expected {
            return Err(JsError(format!(
                "web seed sent {} bytes for a range of {expected}",
                bytes.len()
            )));
        }
        data.extend_from_slice(&bytes);
    }
    Ok(data)
}

async fn fetch_range(range: &RangeRequest) -> Result<Vec<u8>, JsError> {
    let init = RequestInit::new();
    let request = Request::new_with_str_and_init(&range.url, &init).map_err(js_error)?;
    request
        .headers()
        .set("Range", &format!("bytes={}-{}", range.start, range.end))
        .map_err(js_error)?;
    let response: Response = JsFuture::from(crate::js::fetch(&request)?)
        .await
        .map_err(js_error)?
        .dyn_into()
        .map_err(js_error)?;
    // 200 would be the whole file: only a partial answer is a right one
    // (unless the range is the whole file, which a 200 also satisfies).
    let whole_file = range.start == 0 && response.status() == 200;
    if response.status() != 206 && !whole_file {
        return Err(JsError(format!(
            "web seed answered {} to a range request",
            response.status()
        )));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(js_error)?)
        .await
        .map_err(js_error)?;
    let mut bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    if whole_file {
        let wanted = usize::try_from(range.end + 1).unwrap_or(usize::MAX);
        bytes.truncate(wanted);
    }
    Ok(bytes)
}

fn file_url(info: &Info, base: &str, path: &[String]) -> String {
    if info.is_single_file() {
        if base.ends_with('/') {
            format!("{base}{}", utf8_percent_encode(&info.name, SEGMENT))
        } else {
            base.to_owned()
        }
    } else {
        let mut url = base.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        let segments: Vec<String> = path
            .iter()
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        url.push_str(&segments.join("/"));
        url
    }
}

#[cfg(test)]
mod tests {
    use swarm::metainfo::FileEntry;

    use super::*;

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
    fn single_file_url_is_the_file_or_base_plus_name() {
        let mut one = info(&[(&["album"], 1000)]);
        one.name = "my song.mp3".into();
        one.files[0].path = vec!["my song.mp3".into()];
        let plan = plan_ranges(&one, "http://h/media/x.mp3", 100, 50);
        assert_eq!(
            plan,
            vec![RangeRequest {
                url: "http://h/media/x.mp3".into(),
                start: 100,
                end: 149
            }]
        );
        let plan = plan_ranges(&one, "http://h/media/", 990, 50);
        assert_eq!(plan[0].url, "http://h/media/my%20song.mp3");
        assert_eq!(
            (plan[0].start, plan[0].end),
            (990, 999),
            "clipped at the end"
        );
    }

    #[test]
    fn multi_file_fetch_is_split_at_file_boundaries() {
        let album = info(&[
            (&["album", "a.mp3"], 100),
            (&["album", "empty"], 0),
            (&["album", "cd 2", "b.mp3"], 100),
        ]);
        let plan = plan_ranges(&album, "http://h/media", 90, 20);
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
        assert!(plan_ranges(&album, "http://h/", 500, 10).is_empty());
    }
}
