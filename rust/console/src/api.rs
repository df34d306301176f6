//! The console's one way into the control plane: the service traits gRPC and the REST gateway
//! serve (`AdminService`, `SignalService`, `DataProxyService`), called in process behind the
//! same [`Gate`] as theirs. Pages never touch the store, so they show exactly what a client of
//! the API could see, and exactly what this caller may see.
//!
//! The router's state is [`Services`] (not bound to anyone); every handler extracts an [`Api`]
//! instead, bound to the request's [`Caller`] (which the HTTP `AuthLayer` put in the request's
//! extensions). A handler cannot reach the services without a caller: `State<Api>` does not
//! exist in this router.

use std::convert::Infallible;
use std::sync::Arc;

use alula_admin::authz::{Gate, Guarded, Permission};
use alula_admin::dataproxy::DataProxy;
use alula_admin::{AdminApi, AdminConfig};
use alula_auth::{Caller, Principal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Extensions;

/// The services behind the gate, shared by every request: the console router's state.
#[derive(Clone)]
pub struct Services {
    pub(crate) admin: Guarded<AdminApi>,
    pub(crate) data_proxy: Guarded<DataProxy>,
    pub(crate) gate: Gate,
    pub(crate) config: Arc<AdminConfig>,
}

impl Services {
    /// The caller of a request: what the authentication layer found, or, when no layer ran
    /// (tests, an embedding without it), Unchecked with authentication off and Anonymous with
    /// it on (the design's rule for guarded calls without a caller).
    pub(crate) fn caller_of(&self, extensions: &Extensions) -> Caller {
        extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| self.default_caller())
    }

    fn default_caller(&self) -> Caller {
        if self.gate.auth().enabled() {
            Caller::Anonymous
        } else {
            Caller::Unchecked
        }
    }

    /// These services on behalf of `caller`.
    pub(crate) fn bind(&self, caller: Caller) -> Api {
        Api {
            admin: self.admin.clone(),
            data_proxy: self.data_proxy.clone(),
            gate: self.gate.clone(),
            config: self.config.clone(),
            caller,
        }
    }
}

/// The services on behalf of one caller, cheap to clone into every request.
#[derive(Clone)]
pub struct Api {
    pub admin: Guarded<AdminApi>,
    pub data_proxy: Guarded<DataProxy>,
    pub gate: Gate,
    /// The deployment's settings (its public HTTP URL, for links a browser follows).
    pub config: Arc<AdminConfig>,
    /// Who the pages are rendered for and the calls are made by.
    pub caller: Caller,
}

impl Api {
    /// The services behind `gate`, for a caller the default of [`Services::caller_of`] (the
    /// router binds each request to its own caller).
    pub fn new(admin: AdminApi, gate: Gate, config: Arc<AdminConfig>) -> Self {
        let data_proxy = DataProxy::new(config.clone(), admin.clone());
        let services = Services {
            admin: Guarded::new(admin, gate.clone()),
            data_proxy: Guarded::new(data_proxy, gate.clone()),
            gate,
            config,
        };
        let caller = services.default_caller();
        services.bind(caller)
    }

    /// The same services for another caller.
    pub fn with_caller(&self, caller: Caller) -> Self {
        Self {
            caller,
            ..self.clone()
        }
    }

    pub(crate) fn services(&self) -> Services {
        Services {
            admin: self.admin.clone(),
            data_proxy: self.data_proxy.clone(),
            gate: self.gate.clone(),
            config: self.config.clone(),
        }
    }

    /// A request to a service trait on behalf of the browser's user: the caller goes into its
    /// extensions as the gRPC and REST entry points put it there, so the same authorization
    /// runs for every caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(self.caller.clone());
        request
    }

    /// Whether the caller may do `permission` on `project`/`domain`: pages ask before they
    /// show a control (the services check again on every call).
    pub async fn allows(&self, permission: Permission, project: &str, domain: &str) -> bool {
        self.gate
            .allows(&self.caller, permission, project, domain)
            .await
    }

    /// The signed-in user or client, when authentication is on and the request proved one.
    pub fn principal(&self) -> Option<&Principal> {
        self.caller.principal()
    }
}

impl FromRequestParts<Services> for Api {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        Ok(services.bind(services.caller_of(&parts.extensions)))
    }
}
