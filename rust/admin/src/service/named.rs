//! Named entities (a name across its versions, with editable metadata) and description
//! entities (per-version documentation registered with tasks and workflows).

use alula_core::ids::IdDisplay;
use alula_idl::flyteidl::admin::{
    DescriptionEntity, DescriptionEntityList, DescriptionEntityListRequest, NamedEntity,
    NamedEntityGetRequest, NamedEntityIdentifier, NamedEntityList, NamedEntityListRequest,
    NamedEntityMetadata, NamedEntityState, NamedEntityUpdateRequest, NamedEntityUpdateResponse,
    ObjectGetRequest,
};
use alula_idl::flyteidl::core::ResourceType;

use super::{list_params, named_id, require, AdminApi};
use crate::error::{AdminError, AdminResult};
use crate::store::{Entity, EntityKey, NamedEntityRow, DESCRIPTION_FIELDS, NAMED_ENTITY_FIELDS};

fn entity_of(resource_type: i32) -> AdminResult<Entity> {
    Entity::of_resource_type(resource_type).ok_or_else(|| {
        AdminError::invalid(format!(
            "resource_type {} is not one of TASK, WORKFLOW, LAUNCH_PLAN",
            ResourceType::try_from(resource_type).map_or("unknown", |r| r.as_str_name())
        ))
    })
}

fn named_entity(entity: Entity, project: &str, domain: &str, row: NamedEntityRow) -> NamedEntity {
    NamedEntity {
        resource_type: entity.resource_type() as i32,
        id: Some(NamedEntityIdentifier {
            project: project.to_string(),
            domain: domain.to_string(),
            name: row.name,
            org: String::new(),
        }),
        metadata: Some(NamedEntityMetadata {
            description: row.description,
            state: i32::try_from(row.state).unwrap_or_default(),
        }),
    }
}

impl AdminApi {
    pub(crate) async fn list_named_entities(
        &self,
        req: NamedEntityListRequest,
    ) -> AdminResult<NamedEntityList> {
        let entity = entity_of(req.resource_type)?;
        require(&req.project, "project")?;
        require(&req.domain, "domain")?;
        let list = list_params(
            &NAMED_ENTITY_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let rows = self
            .store
            .list_named_entities(entity, &req.project, &req.domain, &list)
            .await?;
        Ok(NamedEntityList {
            token: list.next_token(rows.len()),
            entities: rows
                .into_iter()
                .map(|r| named_entity(entity, &req.project, &req.domain, r))
                .collect(),
        })
    }

    pub(crate) async fn get_named_entity(
        &self,
        req: NamedEntityGetRequest,
    ) -> AdminResult<NamedEntity> {
        let entity = entity_of(req.resource_type)?;
        let id = named_id(req.id.as_ref(), true)?;
        let row = self
            .store
            .get_named_entity(entity, &id.project, &id.domain, &id.name)
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!(
                    "no {} named {}/{}/{} is registered",
                    entity.noun(),
                    id.project,
                    id.domain,
                    id.name
                ))
            })?;
        Ok(named_entity(entity, &id.project, &id.domain, row))
    }

    pub(crate) async fn update_named_entity(
        &self,
        req: NamedEntityUpdateRequest,
    ) -> AdminResult<NamedEntityUpdateResponse> {
        let entity = entity_of(req.resource_type)?;
        let id = named_id(req.id.as_ref(), true)?;
        let metadata = req.metadata.unwrap_or_default();
        if NamedEntityState::try_from(metadata.state).is_err() {
            return Err(AdminError::invalid(format!(
                "unknown named entity state {}",
                metadata.state
            )));
        }
        if self
            .store
            .get_named_entity(entity, &id.project, &id.domain, &id.name)
            .await?
            .is_none()
        {
            return Err(AdminError::not_found(format!(
                "no {} named {}/{}/{} is registered",
                entity.noun(),
                id.project,
                id.domain,
                id.name
            )));
        }
        let row = NamedEntityRow {
            name: id.name.clone(),
            description: metadata.description,
            state: i64::from(metadata.state),
        };
        self.store
            .upsert_named_entity_metadata(entity, &id.project, &id.domain, &row)
            .await?;
        Ok(NamedEntityUpdateResponse {})
    }

    pub(crate) async fn get_description_entity(
        &self,
        req: ObjectGetRequest,
    ) -> AdminResult<DescriptionEntity> {
        let id = req
            .id
            .as_ref()
            .ok_or_else(|| AdminError::invalid("missing id"))?;
        let entity = entity_of(id.resource_type)?;
        self.store
            .get_description_entity(entity, &EntityKey::from(id))
            .await?
            .ok_or_else(|| {
                AdminError::not_found(format!(
                    "no description entity for {} {}",
                    entity.noun(),
                    IdDisplay(id)
                ))
            })
    }

    pub(crate) async fn list_description_entities(
        &self,
        req: DescriptionEntityListRequest,
    ) -> AdminResult<DescriptionEntityList> {
        let entity = entity_of(req.resource_type)?;
        let id = named_id(req.id.as_ref(), false)?;
        let list = list_params(
            &DESCRIPTION_FIELDS,
            &req.filters,
            req.sort_by.as_ref(),
            req.limit,
            &req.token,
        )?;
        let name = (!id.name.is_empty()).then_some(id.name.as_str());
        let rows = self
            .store
            .list_description_entities(entity, &id.project, &id.domain, name, &list)
            .await?;
        Ok(DescriptionEntityList {
            token: list.next_token(rows.len()),
            description_entities: rows,
        })
    }
}
