//! `GET /health`: each pipeline the caller may see, with its verdict (the
//! problem when it cannot do its job) and open connections. The
//! public listeners answer `/readyz` and `/health` with the overall verdict only.

use hyper::StatusCode;

use super::State;
use super::auth::Caller;
use super::http::{self, ApiError, Reply};

/// `GET /health`: 200 when every visible pipeline is ready, else 503, with
/// the same body either way.
pub async fn get(state: &State, caller: &Caller) -> Result<Reply, ApiError> {
    let Some(health) = &state.health else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this process reports no health",
        ));
    };
    let (status, body) = health
        .load_full()
        .detail(|tenant| caller.may_access(tenant))
        .await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    Ok(http::json(status, &body))
}
