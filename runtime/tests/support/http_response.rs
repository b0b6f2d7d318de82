//! The tests' one HTTP response parser: status line, headers (names
//! lowercased) and a sized body, read off the wire incrementally (the fuzz
//! harness feeds it as bytes arrive; the admin client once at EOF).

/// An HTTP response read off the wire.
#[derive(Debug, Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// The response at the start of `bytes` and how many bytes it took;
/// `Ok(None)` while incomplete (a body without a length runs to the end).
/// `to_head`: it answers a HEAD request, so it has no body.
pub fn parse(
    bytes: &[u8],
    at_eof: bool,
    to_head: bool,
) -> Result<Option<(Response, usize)>, String> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&bytes[..end])
        .map_err(|_| format!("a response head that is not UTF-8: {:?}", &bytes[..end]))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let (true, Some(status)) = (version == "HTTP/1.1" || version == "HTTP/1.0", status) else {
        return Err(format!("not an HTTP response: {status_line:?}"));
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("a response header without a colon: {line:?}"));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = Response {
        version,
        status,
        headers,
        body: Vec::new(),
    };
    let start = end + 4;
    if to_head || status == 101 || status == 204 || status == 304 {
        return Ok(Some((response, start)));
    }
    let length = match response.header("content-length") {
        Some(value) => Some(
            value
                .parse::<usize>()
                .map_err(|_| format!("a bad content-length: {value:?}"))?,
        ),
        None if response.header("transfer-encoding").is_some() => {
            return Err("a chunked response (Sluice sends sized bodies)".into());
        }
        None => None,
    };
    let end = match length {
        Some(n) if bytes.len() - start >= n => start + n,
        Some(_) => return Ok(None),
        None if at_eof => bytes.len(),
        None => return Ok(None),
    };
    response.body = bytes[start..end].to_vec();
    Ok(Some((response, end)))
}
