//! `/containers/{id}/exec` and `/exec/{id}/...`.

use axum::response::Response;

use crate::error::ApiResult;
use crate::{ApiRequest, AppState, not_found};

pub async fn route(_state: &AppState, request: ApiRequest) -> ApiResult<Response> {
    Err(not_found(&format!("/{}", request.segments.join("/"))))
}
