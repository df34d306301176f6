//! The console's one way into the control plane: the service traits gRPC and the REST gateway
//! serve (`AdminService`, `SignalService`, `DataProxyService`), called in process. Pages never
//! touch the store, so they show exactly what a client of the API could see.

use std::sync::Arc;

use alula_admin::dataproxy::DataProxy;
use alula_admin::{AdminApi, AdminConfig};

/// Handles to the services, cheap to clone into every request.
#[derive(Clone)]
pub struct Api {
    pub admin: AdminApi,
    pub data_proxy: DataProxy,
    /// The deployment's settings (its public HTTP URL, for links a browser follows).
    pub config: Arc<AdminConfig>,
}

impl Api {
    pub fn new(admin: AdminApi, config: Arc<AdminConfig>) -> Self {
        Self {
            data_proxy: DataProxy::new(config.clone(), admin.clone()),
            admin,
            config,
        }
    }

    /// A request to a service trait on behalf of the browser's user.
    ///
    /// Authentication plugs in here: the caller's principal, resolved from the session by a
    /// middleware in front of the console's routes, goes into the request's extensions as the
    /// gRPC and REST entry points put it, so the same authorization runs for every caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        tonic::Request::new(message)
    }
}
