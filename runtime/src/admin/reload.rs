//! `/reload`: reload the pipeline file now, or read how the last reload
//! ended. Only the operator may: a reload touches every tenant.

use hyper::StatusCode;
use serde_json::json;

use super::State;
use super::auth::Caller;
use super::http::{self, ApiError, Reply};
use super::reload_queue::{Reloads, Trigger};

/// `POST /reload`: 200 with the outcome when the new config runs, 422 with
/// the reasons when it was refused (and nothing changed).
pub async fn now(state: &State, caller: &Caller) -> Result<Reply, ApiError> {
    let reloads = allowed(state, caller)?;
    let outcome = reloads
        .run(Trigger::Admin)
        .await
        .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the process is stopping"))?;
    tracing::info!(%caller, ok = outcome.ok, "Admin API: reload.");
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(http::json(status, &json!(*outcome)))
}

/// `GET /reload`: the last reload's outcome (404 before the first).
pub fn last(state: &State, caller: &Caller) -> Result<Reply, ApiError> {
    let reloads = allowed(state, caller)?;
    match reloads.last() {
        Some(outcome) => Ok(http::json(StatusCode::OK, &json!(*outcome))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no reload has run since the process started",
        )),
    }
}

fn allowed<'s>(state: &'s State, caller: &Caller) -> Result<&'s Reloads, ApiError> {
    if *caller != Caller::Operator {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "only the operator's token may reload: a reload affects every tenant",
        ));
    }
    state.reloads.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "this process cannot reload its pipeline file",
        )
    })
}
