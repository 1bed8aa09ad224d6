//! Extractors that answer malformed input with problem documents: JSON bodies, query strings,
//! path ids, and the caller's bearer token.

use super::App;
use super::problem::ApiError;
use crate::auth::{Claims, Role, TokenError};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use lockergrid_model::Actor;
use lockergrid_protocol::StationId;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A JSON body; wrong content type, oversized, malformed or mistyped bodies become problems.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            // The rest of the body stays unread, so the connection cannot be reused.
            ApiError::new(
                rejection.status(),
                "body-rejected",
                "Request body rejected",
                rejection.body_text(),
            )
            .closing()
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            if e.is_data() {
                ApiError::invalid(e.to_string())
            } else {
                ApiError::bad_request(format!("malformed JSON: {e}"))
            }
        })
    }
}

/// A query string; missing, unknown or mistyped parameters become problems.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// The `{id}` segment of a path, as text; undecodable segments become problems.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|rejection| ApiError::not_found(rejection.body_text()))
    }
}

/// Parses a path id, answering a malformed one with 404: no resource can have that name.
pub fn path_id<T: std::str::FromStr>(raw: &str, kind: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no {kind} {raw:?}")))
}

/// The authenticated caller of a request.
pub struct Caller {
    /// What the caller's token says.
    pub claims: Claims,
    method: Method,
    path: String,
}

impl Caller {
    /// The caller as the access log names it.
    pub fn actor(&self) -> Actor {
        Actor {
            subject: self.claims.sub.clone(),
            role: self.claims.role.to_string(),
        }
    }

    /// Allows the request if the caller has one of `roles` and, for roles scoped to stations,
    /// `station` is among its stations. A refusal is written to the access log and answered 403.
    pub async fn permit(
        &self,
        app: &App,
        roles: &[Role],
        station: Option<&StationId>,
    ) -> Result<(), ApiError> {
        let role = self.claims.role;
        let reason = if !roles.contains(&role) {
            format!("role {role} may not call {} {}", self.method, self.path)
        } else if let Some(station) = station.filter(|s| role.is_scoped() && !self.claims.covers(s))
        {
            format!("this {role} token does not cover station {station}")
        } else {
            return Ok(());
        };
        let target = format!("{} {}", self.method, self.path);
        app.store
            .record(self.actor(), "denied", &target, &reason, None)
            .await?;
        Err(ApiError::forbidden(reason))
    }

    /// The record of kind `kind` whose id is the path's `raw`, for a caller with one of `roles`;
    /// a role scoped to stations sees only its stations' records, a checkout token only its own
    /// merchant's. `find` reads it by id; no such record, or one the caller may not see, is 404
    /// (a merchant never learns that another's record exists).
    pub async fn load<I: std::str::FromStr, T: Owned>(
        &self,
        app: &App,
        raw: &str,
        kind: &str,
        roles: &[Role],
        find: impl FnOnce(&I) -> Result<Option<T>, lockergrid_store::StoreError>,
    ) -> Result<T, ApiError> {
        let id: I = path_id(raw, kind)?;
        self.permit(app, roles, None).await?;
        let not_found = || ApiError::not_found(format!("no {kind} {raw:?}"));
        let record = find(&id)?.ok_or_else(not_found)?;
        if self.claims.role == Role::Checkout
            && record
                .merchant()
                .is_some_and(|merchant| merchant != self.claims.sub)
        {
            return Err(not_found());
        }
        self.permit(app, roles, Some(record.station())).await?;
        Ok(record)
    }
}

/// A record that belongs to a station and, when a checkout made it, to a merchant.
pub trait Owned {
    /// Its station.
    fn station(&self) -> &StationId;
    /// The merchant whose checkout made it.
    fn merchant(&self) -> Option<&str>;
}

impl Owned for lockergrid_model::Reservation {
    fn station(&self) -> &StationId {
        &self.station_id
    }
    fn merchant(&self) -> Option<&str> {
        self.merchant.as_deref()
    }
}

impl Owned for lockergrid_model::Parcel {
    fn station(&self) -> &StationId {
        &self.station_id
    }
    fn merchant(&self) -> Option<&str> {
        self.merchant.as_deref()
    }
}

impl Owned for lockergrid_model::ReturnRecord {
    fn station(&self) -> &StationId {
        &self.station_id
    }
    fn merchant(&self) -> Option<&str> {
        self.merchant.as_deref()
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be Bearer"))?;
        let claims = app
            .verify_token(token.trim())
            .map_err(|e: TokenError| ApiError::unauthorized(e.to_string()))?;
        Ok(Caller {
            claims,
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
        })
    }
}

/// A caller with the operator role, checked (and a refusal recorded) while only the request's
/// head has been read: a route that takes a large body (a plugin) reads it for operators alone.
pub struct Operator(pub Caller);

impl FromRequestParts<Arc<App>> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, app).await?;
        caller.permit(app, &[Role::Operator], None).await?;
        Ok(Operator(caller))
    }
}
