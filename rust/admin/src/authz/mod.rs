//! Authorization: every RPC of every served service needs a [`Permission`] on the project (and
//! domain) its request names ([`table`], [`scope`]); the caller's roles come from role
//! bindings (settings and database). [`Guarded`] wraps each service so that gRPC, the REST
//! gateway and the console all pass the same check, and mutating calls land in the audit log
//! ([`audit`]).

pub mod audit;
pub mod containment;
mod guarded_admin;
mod guarded_other;
pub mod references;
pub mod scope;
pub mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use alula_auth::Permission;
use alula_auth::{Binding, Caller, PrincipalKind, Role};
use tonic::Status;

use crate::auth::Auth;
use crate::store::{AuditEntry, Store};
use scope::{Scope, Scoped};
use table::{method_name, permission_of, Need};

/// How long role bindings read from the database are used before being read again: `alula
/// auth grant` takes effect within this, and a busy server reads them once per interval.
const BINDINGS_TTL: Duration = Duration::from_secs(2);

/// The database's role bindings and when they were read.
type CachedBindings = (Instant, Arc<Vec<Binding>>);

/// Decides for every guarded service: authentication settings, role bindings, the audit log.
#[derive(Clone)]
pub struct Gate {
    auth: Auth,
    store: Store,
    database_bindings: Arc<tokio::sync::Mutex<Option<CachedBindings>>>,
}

/// A call the gate let through, with what the audit log says of it once it is answered.
pub(crate) struct Admitted {
    pub(crate) caller: Caller,
    /// The caller's role on the call's scope (`Admin` when authentication is off).
    pub(crate) role: Option<Role>,
    full_method: &'static str,
    need: Need,
    project: Option<String>,
    domain: Option<String>,
    resource: String,
}

impl Admitted {
    pub(crate) fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    pub(crate) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub(crate) fn method(&self) -> &'static str {
        method_name(self.full_method)
    }
}

impl Gate {
    pub fn new(auth: Auth, store: Store) -> Self {
        Self {
            auth,
            store,
            database_bindings: Arc::default(),
        }
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The caller a request carries (the authentication layer put it in the extensions). A
    /// request without one was not seen by the layer: with authentication on it is anonymous,
    /// never trusted; and `Unchecked` means "authentication off" only when it is off.
    pub fn caller_in(&self, extensions: &axum::http::Extensions) -> Caller {
        match extensions.get::<Caller>() {
            Some(Caller::Unchecked) | None if self.auth.enabled() => Caller::Anonymous,
            Some(caller) => caller.clone(),
            None => Caller::Unchecked,
        }
    }

    /// The highest role `caller` holds on `project`/`domain` (`None`: a request about no
    /// single project or domain): settings' bindings and the database's. `Some(Admin)` when
    /// authentication is off; `None` for anonymous or refused callers.
    pub async fn role(
        &self,
        caller: &Caller,
        project: Option<&str>,
        domain: Option<&str>,
    ) -> Option<Role> {
        match caller {
            Caller::Unchecked if !self.auth.enabled() => Some(Role::Admin),
            Caller::Authenticated(principal) => {
                let database = self.database_bindings().await;
                alula_auth::roles::role_of(
                    self.auth.settings().bindings.iter().chain(database.iter()),
                    principal,
                    project,
                    domain,
                )
            }
            _ => None,
        }
    }

    /// The caller's highest role on any domain of `project` (or on all of them).
    pub async fn role_in_any_domain(&self, caller: &Caller, project: &str) -> Option<Role> {
        let mut best = self.role(caller, Some(project), None).await;
        let mut domains: Vec<String> = self
            .auth
            .settings()
            .bindings
            .iter()
            .chain(self.database_bindings().await.iter())
            .filter(|b| b.domain != alula_auth::roles::ANY)
            .map(|b| b.domain.clone())
            .collect();
        domains.sort();
        domains.dedup();
        for domain in &domains {
            best = best.max(self.role(caller, Some(project), Some(domain)).await);
        }
        best
    }

    /// Whether `caller` may do `permission` on `project`/`domain` (the console asks before it
    /// shows a button; the guarded services ask for every call).
    pub async fn allows(
        &self,
        caller: &Caller,
        permission: Permission,
        project: &str,
        domain: &str,
    ) -> bool {
        self.role(caller, Some(project), Some(domain))
            .await
            .is_some_and(|role| role.grants(permission))
    }

    /// Reads the database's bindings again at the next check (after `alula auth grant` in the
    /// same process).
    pub async fn forget_bindings(&self) {
        *self.database_bindings.lock().await = None;
    }

    async fn database_bindings(&self) -> Arc<Vec<Binding>> {
        let mut cached = self.database_bindings.lock().await;
        if let Some((read_at, bindings)) = cached.as_ref() {
            if read_at.elapsed() < BINDINGS_TTL {
                return bindings.clone();
            }
        }
        match self.store.role_bindings().await {
            Ok(bindings) => {
                let bindings = Arc::new(bindings);
                *cached = Some((Instant::now(), bindings.clone()));
                bindings
            }
            Err(e) => {
                // Fewer roles is the safe side: the last bindings read, or none.
                tracing::warn!(error = %e, "role bindings cannot be read from the database");
                cached
                    .as_ref()
                    .map_or_else(Arc::default, |(_, bindings)| bindings.clone())
            }
        }
    }

    /// Lets the call through or says why not (UNAUTHENTICATED without valid credentials,
    /// PERMISSION_DENIED without the role); refusals of mutating calls are audited.
    pub(crate) async fn admit<T: Scoped>(
        &self,
        request: &tonic::Request<T>,
        full_method: &'static str,
    ) -> Result<Admitted, Status> {
        self.admit_in(request, request.get_ref().scope(), full_method)
            .await
    }

    /// [`Gate::admit`] for a request about no one project (the data plane's): only a binding
    /// over every project grants it.
    pub(crate) async fn admit_everywhere<T>(
        &self,
        request: &tonic::Request<T>,
        full_method: &'static str,
    ) -> Result<Admitted, Status> {
        let scope = Scope::everywhere(method_name(full_method).to_string());
        self.admit_in(request, scope, full_method).await
    }

    async fn admit_in<T>(
        &self,
        request: &tonic::Request<T>,
        scope: Scope<'_>,
        full_method: &'static str,
    ) -> Result<Admitted, Status> {
        let caller = self.caller_in(request.extensions());
        let Some(need) = permission_of(full_method) else {
            // The table test keeps this from happening; if it does, refuse rather than allow.
            return Err(Status::permission_denied(format!(
                "permission denied: {} has no entry in the authorization table",
                method_name(full_method)
            )));
        };
        let role = match need {
            Need::Public => None,
            _ if scope.any_domain && scope.domain.is_none() => match scope.project {
                Some(project) => self.role_in_any_domain(&caller, project).await,
                None => self.role(&caller, None, None).await,
            },
            _ => self.role(&caller, scope.project, scope.domain).await,
        };
        let admitted = Admitted {
            caller,
            role,
            full_method,
            need,
            project: scope.project.map(str::to_string),
            domain: scope.domain.map(str::to_string),
            resource: scope.resource.clone(),
        };
        match self.refusal(&admitted, &scope) {
            None => Ok(admitted),
            Some(status) => {
                self.finish(&admitted, Err(&status)).await;
                Err(status)
            }
        }
    }

    fn refusal(&self, admitted: &Admitted, scope: &Scope<'_>) -> Option<Status> {
        let caller = &admitted.caller;
        if admitted.need == Need::Public || matches!(caller, Caller::Unchecked) {
            return None;
        }
        let method = admitted.method();
        match caller {
            Caller::Anonymous | Caller::Unchecked => {
                return Some(Status::unauthenticated(format!(
                    "{method} needs credentials: send a bearer token in the authorization header"
                )))
            }
            Caller::Refused(reason) => {
                return Some(Status::unauthenticated(format!(
                    "{method}: the credentials were refused: {reason}"
                )))
            }
            Caller::Authenticated(_) => {}
        }
        let permission = match admitted.need {
            Need::Scoped(permission) => permission,
            Need::DataPlane => Permission::Administer,
            Need::Public | Need::Authenticated => return None,
        };
        if admitted.role.is_some_and(|role| role.grants(permission)) {
            return None;
        }
        Some(Status::permission_denied(denial(
            method,
            &format!("needs the {} role", least_role(permission).as_str()),
            scope.project,
            scope.domain,
            caller,
            admitted.role,
        )))
    }

    /// Writes the audit entry of a mutating call (allowed or refused). A failed write is
    /// logged, never the call's failure.
    pub(crate) async fn finish(&self, admitted: &Admitted, outcome: Result<(), &Status>) {
        if !admitted.need.is_mutating() {
            return;
        }
        let (code, message) = match outcome {
            Ok(()) => ("OK".to_string(), String::new()),
            Err(status) => (
                alula_idl::codes::code_name(status.code()).to_string(),
                status.message().to_string(),
            ),
        };
        let entry = AuditEntry {
            at: crate::store::now_micros(),
            principal: who(&admitted.caller),
            method: admitted.full_method.to_string(),
            project: admitted.project.clone().unwrap_or_default(),
            domain: admitted.domain.clone().unwrap_or_default(),
            resource: admitted.resource.clone(),
            code,
            message,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::warn!(error = %e, method = admitted.full_method, "audit entry not written");
        }
    }

    /// PERMISSION_DENIED unless the caller is admin of the call's scope: for what only admins
    /// may ask (a service account of the caller's choosing), `what` says what was asked.
    pub(crate) fn require_admin(&self, admitted: &Admitted, what: &str) -> Result<(), Status> {
        if admitted
            .role
            .is_some_and(|r| r.grants(Permission::Administer))
        {
            return Ok(());
        }
        Err(Status::permission_denied(denial(
            admitted.method(),
            &format!("asks to run as {what}, which needs the admin role"),
            admitted.project(),
            admitted.domain(),
            &admitted.caller,
            admitted.role,
        )))
    }

    /// PERMISSION_DENIED unless the caller may launch (has the runner role) where each
    /// definition the request uses from another project or domain is registered
    /// ([`references`]): using a definition runs its code.
    pub(crate) async fn require_use(
        &self,
        admitted: &Admitted,
        used: &[references::Used],
    ) -> Result<(), Status> {
        if matches!(admitted.caller, Caller::Unchecked) {
            return Ok(());
        }
        for used in references::elsewhere(used, admitted.project(), admitted.domain()) {
            let place = (Some(used.project.as_str()), Some(used.domain.as_str()));
            let role = self.role(&admitted.caller, place.0, place.1).await;
            if role.is_some_and(|r| r.grants(Permission::Launch)) {
                continue;
            }
            return Err(Status::permission_denied(denial(
                admitted.method(),
                &format!(
                    "uses {}, which needs the {} role",
                    used.what,
                    least_role(Permission::Launch).as_str()
                ),
                place.0,
                place.1,
                &admitted.caller,
                role,
            )));
        }
        Ok(())
    }
}

/// The least role granting `permission`.
fn least_role(permission: Permission) -> Role {
    Role::ALL
        .into_iter()
        .find(|r| r.grants(permission))
        .unwrap_or(Role::Admin)
}

/// `permission denied: CreateTask needs the developer role on project "p", domain "d";
/// client:ci has viewer`. Never names a token.
fn denial(
    method: &str,
    needs: &str,
    project: Option<&str>,
    domain: Option<&str>,
    caller: &Caller,
    role: Option<Role>,
) -> String {
    let place = match (project, domain) {
        (Some(p), Some(d)) => format!("on project {p:?}, domain {d:?}"),
        (Some(p), None) => format!("on project {p:?} (all its domains)"),
        (None, _) => "on all projects".to_string(),
    };
    let has = role.map_or_else(
        || "has no role there".to_string(),
        |r| format!("has {}", r.as_str()),
    );
    format!(
        "permission denied: {method} {needs} {place}; {} {has}",
        who(caller)
    )
}

/// How the audit log and refusals name a caller: `client:ci`, `user:alice`.
pub fn who(caller: &Caller) -> String {
    match caller {
        Caller::Authenticated(principal) => match principal.kind {
            PrincipalKind::Client => format!("client:{}", principal.subject),
            PrincipalKind::User => format!("user:{}", principal.display_name()),
        },
        Caller::Refused(_) => "refused credentials".to_string(),
        Caller::Anonymous | Caller::Unchecked => crate::auth::ANONYMOUS_SUBJECT.to_string(),
    }
}

/// A service behind the gate: implements the same gRPC trait as `S`, checking each call
/// against [`table`] first (and auditing mutating calls). gRPC, the REST gateway and the
/// console call these; the propeller in the same process calls `S` directly.
#[derive(Clone)]
pub struct Guarded<S> {
    pub(crate) inner: S,
    pub(crate) gate: Gate,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, gate: Gate) -> Self {
        Self { inner, gate }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use alula_auth::{Principal, Subject};

    use super::*;
    use crate::auth::{AuthMode, AuthSettings};

    fn client(id: &str) -> Caller {
        Caller::Authenticated(Arc::new(Principal {
            subject: id.into(),
            kind: PrincipalKind::Client,
            name: String::new(),
            email: String::new(),
            preferred_username: String::new(),
            groups: Vec::new(),
            client_id: id.into(),
            issuer: "https://alula.test".into(),
            expires_at: 0,
        }))
    }

    /// A gate with authentication on (its verifier is never asked: callers are made here).
    async fn gate(settings_bindings: Vec<Binding>) -> Gate {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let settings = AuthSettings {
            mode: AuthMode::Builtin,
            issuer: "https://alula.test".into(),
            bindings: settings_bindings,
            ..Default::default()
        };
        let auth = Auth::new(settings, store.clone()).await.unwrap();
        Gate::new(auth, store)
    }

    fn request<T>(message: T, caller: Option<Caller>) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        request
    }

    fn create_task(project: &str) -> alula_idl::flyteidl::admin::TaskCreateRequest {
        alula_idl::flyteidl::admin::TaskCreateRequest {
            id: Some(alula_idl::flyteidl::core::Identifier {
                project: project.into(),
                domain: "development".into(),
                name: "t".into(),
                version: "v".into(),
                ..Default::default()
            }),
            spec: None,
        }
    }

    const CREATE_TASK: &str = "/flyteidl.service.AdminService/CreateTask";

    #[tokio::test]
    async fn roles_come_from_settings_and_database() {
        let gate = gate(vec![Binding {
            subject: Subject::Client("dev".into()),
            project: "flytesnacks".into(),
            domain: "*".into(),
            role: Role::Developer,
        }])
        .await;
        let admitted = gate
            .admit(
                &request(create_task("flytesnacks"), Some(client("dev"))),
                CREATE_TASK,
            )
            .await
            .unwrap();
        assert_eq!(admitted.role, Some(Role::Developer));

        let denied = gate
            .admit(
                &request(create_task("other"), Some(client("dev"))),
                CREATE_TASK,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            denied.message(),
            "permission denied: CreateTask needs the developer role on project \"other\", \
             domain \"development\"; client:dev has no role there"
        );

        gate.store
            .put_role_binding(&Subject::Client("viewer".into()), "*", "*", Role::Viewer)
            .await
            .unwrap();
        gate.forget_bindings().await;
        let denied = gate
            .admit(
                &request(create_task("x"), Some(client("viewer"))),
                CREATE_TASK,
            )
            .await
            .err()
            .unwrap();
        assert!(
            denied.message().ends_with("client:viewer has viewer"),
            "{}",
            denied.message()
        );
        // Both refusals were audited, the admitted call only once answered.
        let audit = gate.store.audit_entries(None, 10, None).await.unwrap();
        assert_eq!(audit.len(), 2);
        assert!(audit.iter().all(|r| r.entry.code == "PERMISSION_DENIED"));
    }

    #[tokio::test]
    async fn without_credentials_only_public_calls_pass() {
        let gate = gate(Vec::new()).await;
        for caller in [None, Some(Caller::Anonymous), Some(Caller::Unchecked)] {
            let refused = gate
                .admit(&request(create_task("p"), caller), CREATE_TASK)
                .await
                .err()
                .unwrap();
            assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        }
        let refused = gate
            .admit(
                &request(create_task("p"), Some(Caller::Refused("expired".into()))),
                CREATE_TASK,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(refused.message().contains("expired"));
        let public = gate
            .admit(
                &request(alula_idl::flyteidl::service::OAuth2MetadataRequest {}, None),
                "/flyteidl.service.AuthMetadataService/GetOAuth2Metadata",
            )
            .await;
        assert!(public.is_ok());
        let unknown = gate
            .admit(
                &request(create_task("p"), Some(client("x"))),
                "/flyteidl.service.AdminService/Nope",
            )
            .await
            .err()
            .unwrap();
        assert_eq!(unknown.code(), tonic::Code::PermissionDenied);
    }

    #[tokio::test]
    async fn authentication_off_allows_everything() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let gate = Gate::new(Auth::off(store.clone()), store);
        let admitted = gate
            .admit(&request(create_task("p"), None), CREATE_TASK)
            .await
            .unwrap();
        assert_eq!(admitted.role, Some(Role::Admin));
        assert!(
            gate.allows(&Caller::Unchecked, Permission::Administer, "p", "d")
                .await
        );
    }
}
