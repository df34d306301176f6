//! The tower layer in front of both ports: finds the [`super::Caller`] of every request and
//! puts it in the request's extensions (tonic copies them into `tonic::Request::extensions`).
//! It refuses nothing itself: [`crate::authz`] answers UNAUTHENTICATED or PERMISSION_DENIED
//! per RPC, so the discovery RPCs and probes stay open.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{Auth, Caller};

/// Wraps tonic's server (`Server::builder().layer(..)`) or an axum router alike: any service of
/// `http::Request<B>`.
#[derive(Clone)]
pub struct AuthLayer {
    pub auth: Auth,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Auth,
}

impl<S, B> tower::Service<axum::http::Request<B>> for AuthService<S>
where
    S: tower::Service<axum::http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's contract); the fresh
        // clone stays for the next one.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        let auth = self.auth.clone();
        Box::pin(async move {
            let caller = auth.caller(request.headers()).await;
            request.extensions_mut().insert(caller);
            ready.call(request).await
        })
    }
}

/// The caller [`AuthLayer`] found for `request`; for a request that did not pass it (an
/// in-process call, a test), [`Caller::Unchecked`] when authentication is off and
/// [`Caller::Anonymous`] when on.
pub fn caller_of<T>(request: &tonic::Request<T>, auth: &Auth) -> Caller {
    match request.extensions().get::<Caller>() {
        Some(caller) => caller.clone(),
        None if auth.enabled() => Caller::Anonymous,
        None => Caller::Unchecked,
    }
}
