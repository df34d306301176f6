//! Projects, domains and the server version.

use alula_idl::flyteidl::admin::{
    project::ProjectState, Domain, GetDomainRequest, GetDomainsResponse, GetVersionRequest,
    GetVersionResponse, Project, ProjectGetRequest, ProjectListRequest, ProjectRegisterRequest,
    ProjectRegisterResponse, ProjectUpdateResponse, Projects, Version,
};

use super::{list_params, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::store::{now_micros, PROJECT_FIELDS};

/// Project ids become parts of Kubernetes namespaces (`<project>-<domain>`): DNS-1123 labels.
fn check_project(project: &Project) -> AdminResult<()> {
    let id = &project.id;
    crate::validate::project(id, "project id")?;
    if project.name.is_empty() {
        return Err(AdminError::invalid(format!("project {id:?} needs a name")));
    }
    if project.name.chars().count() > 64 {
        return Err(AdminError::invalid(format!(
            "name of project {id:?} is longer than 64 characters"
        )));
    }
    if project.description.chars().count() > 300 {
        return Err(AdminError::invalid(format!(
            "description of project {id:?} is longer than 300 characters"
        )));
    }
    if ProjectState::try_from(project.state).is_err() {
        return Err(AdminError::invalid(format!(
            "project {id:?} has unknown state {}",
            project.state
        )));
    }
    Ok(())
}

impl AdminApi {
    fn domains(&self) -> Vec<Domain> {
        self.config
            .domains
            .iter()
            .map(|d| Domain {
                id: d.clone(),
                name: d.clone(),
            })
            .collect()
    }

    fn with_domains(&self, project: Project) -> Project {
        Project {
            domains: self.domains(),
            ..project
        }
    }

    /// Creates the configured default projects that do not exist yet.
    pub async fn ensure_default_projects(&self) -> AdminResult<()> {
        for id in &self.config.default_projects {
            let project = Project {
                id: id.clone(),
                name: id.clone(),
                ..Default::default()
            };
            self.store.insert_project(&project, now_micros()).await?;
        }
        Ok(())
    }

    pub(crate) async fn register_project(
        &self,
        req: ProjectRegisterRequest,
    ) -> AdminResult<ProjectRegisterResponse> {
        let project = req
            .project
            .ok_or_else(|| AdminError::invalid("missing project"))?;
        check_project(&project)?;
        if !self.store.insert_project(&project, now_micros()).await? {
            return Err(AdminError::AlreadyExists(format!(
                "project {:?} already exists",
                project.id
            )));
        }
        Ok(ProjectRegisterResponse {})
    }

    pub(crate) async fn update_project(
        &self,
        project: Project,
    ) -> AdminResult<ProjectUpdateResponse> {
        check_project(&project)?;
        if !self.store.update_project(&project, now_micros()).await? {
            return Err(AdminError::not_found(format!(
                "project {:?} not found",
                project.id
            )));
        }
        Ok(ProjectUpdateResponse {})
    }

    pub(crate) async fn get_project(&self, req: ProjectGetRequest) -> AdminResult<Project> {
        super::require(&req.id, "project id")?;
        let project = self
            .store
            .get_project(&req.id)
            .await?
            .ok_or_else(|| AdminError::not_found(format!("project {:?} not found", req.id)))?;
        Ok(self.with_domains(project))
    }

    /// Unlike the entity lists, `limit` 0 means "all": flytekit's `list_projects` sends none.
    pub(crate) async fn list_projects(&self, req: ProjectListRequest) -> AdminResult<Projects> {
        let limit = if req.limit == 0 { u32::MAX } else { req.limit };
        let list = list_params(
            &PROJECT_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            limit,
            &req.token,
        )?;
        let projects = self.store.list_projects(&list).await?;
        Ok(Projects {
            token: list.next_token(projects.len()),
            projects: projects.into_iter().map(|p| self.with_domains(p)).collect(),
        })
    }

    pub(crate) async fn get_domains(
        &self,
        _req: GetDomainRequest,
    ) -> AdminResult<GetDomainsResponse> {
        Ok(GetDomainsResponse {
            domains: self.domains(),
        })
    }

    pub(crate) async fn get_version(
        &self,
        _req: GetVersionRequest,
    ) -> AdminResult<GetVersionResponse> {
        Ok(GetVersionResponse {
            control_plane_version: Some(Version {
                build: String::new(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                build_time: String::new(),
            }),
        })
    }
}
