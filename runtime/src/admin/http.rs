//! The HTTP pieces the handlers share: JSON replies and errors, query
//! strings and path segments (percent-decoded), bodies with a size limit,
//! and a body as a WebSocket frame by its `Content-Type`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::hub::{Frame, Kind};

/// A response as the admin API sends it.
pub type Reply = Response<Full<Bytes>>;

/// The largest request body taken: a message, a broadcast or a close.
pub const MAX_BODY: usize = 1 << 20;

/// A failed request: its status, `{"error": message}`, and extra headers.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub message: String,
    /// Headers to add (`WWW-Authenticate`, `Allow`).
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    /// An error with no extra headers.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The response.
    pub fn into_reply(self) -> Reply {
        let mut reply = json(self.status, &json!({ "error": self.message }));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                reply.headers_mut().insert(name, value);
            }
        }
        reply
    }
}

/// A JSON response.
pub fn json(status: StatusCode, value: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(value.to_string())));
    *reply.status_mut() = status;
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    reply
}

/// Percent-decodes `text` (and `+` as a space when `plus` is set, as in a
/// query string); the result must be UTF-8.
pub fn decode(text: &str, plus: bool) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("bad percent-encoding in {text:?}"))
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not UTF-8 once decoded")))
}

/// The query string's parameters, decoded, in order.
pub fn query(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name, true)?, decode(value, true)?))
        })
        .collect()
}

/// The value of query parameter `name` (the last one if repeated).
pub fn param<'q>(params: &'q [(String, String)], name: &str) -> Option<&'q str> {
    params
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Reads a whole body of at most [`MAX_BODY`] bytes (413 past it).
pub async fn read_body(
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(ApiError::bad_request(format!(
            "cannot read the body: {error}"
        ))),
    }
}

/// The media type of a `Content-Type` header, lowercased, without
/// parameters (`None` when absent).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next().unwrap_or_default().trim();
    Some(media.to_ascii_lowercase())
}

/// A message body as a WebSocket frame: `text/*` and JSON (`application/json`,
/// `application/*+json`) become a text frame (the body must be UTF-8),
/// `application/octet-stream` a binary frame; anything else is 415.
pub fn frame(headers: &HeaderMap, body: Bytes) -> Result<Frame, ApiError> {
    let media = media_type(headers);
    let kind = match media.as_deref() {
        Some(m) if m.starts_with("text/") || is_json(m) => Kind::Text,
        Some("application/octet-stream") => Kind::Binary,
        other => {
            let got = other.map_or_else(|| "none".to_owned(), |m| format!("`{m}`"));
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type must be text/* or application/json (a text message) or application/octet-stream (a binary message); got {got}"
                ),
            ));
        }
    };
    if kind == Kind::Text && std::str::from_utf8(&body).is_err() {
        return Err(ApiError::bad_request(
            "a text message must be UTF-8 (send application/octet-stream for binary)",
        ));
    }
    Ok(Frame::new(kind, body))
}

/// `application/json` or `application/<anything>+json`.
pub fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_decoded() {
        let params = query(Some("tenant=acme&x&channel=a%2Fb+c&channel=last")).unwrap();
        assert_eq!(param(&params, "tenant"), Some("acme"));
        assert_eq!(param(&params, "x"), Some(""));
        assert_eq!(param(&params, "channel"), Some("last"));
        assert_eq!(params[2].1, "a/b c");
        assert!(query(Some("a=%zz")).is_err());
        assert!(query(Some("a=%ff")).is_err());
        assert_eq!(decode("a+b%20c", false).unwrap(), "a+b c");
    }

    #[test]
    fn content_types_pick_the_frame_kind() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            headers
        };
        let body = Bytes::from_static(b"hi");
        assert_eq!(
            frame(&with("text/plain; charset=utf-8"), body.clone())
                .unwrap()
                .kind,
            Kind::Text
        );
        assert_eq!(
            frame(&with("Application/JSON"), body.clone()).unwrap().kind,
            Kind::Text
        );
        assert_eq!(
            frame(&with("application/octet-stream"), body.clone())
                .unwrap()
                .kind,
            Kind::Binary
        );
        let refused = frame(&with("image/png"), body.clone()).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let refused = frame(&HeaderMap::new(), body).unwrap_err();
        assert_eq!(refused.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let refused = frame(&with("text/plain"), Bytes::from_static(&[0xff])).unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    }
}
