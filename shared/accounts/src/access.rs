//! Roles and permissions (seed 003): the one check admin routes go through, the grants,
//! and the named roles operators define.

use std::collections::BTreeMap;

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use db::schema::{role_permissions, roles, user_roles, users};
use db::{Db, PgConn};
use domain::access::{Action, Resource, RoleName, ADMIN_ROLE, USER_ROLE};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;

use crate::auth::Email;

/// A role with what it allows.
#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: Vec<(Action, Resource)>,
}

#[derive(Clone)]
pub struct AccessService {
    db: Db,
}

impl AccessService {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Whether one of the caller's roles allows `action` on every `resource`. (Every
    /// account acts on its own jobs, clips and data without a permission.)
    pub async fn permitted(
        &self,
        caller: AuthUser,
        action: Action,
        resource: Resource,
    ) -> ServiceResult<bool> {
        self.db
            .run(move |conn| {
                Ok(diesel::select(diesel::dsl::exists(
                    user_roles::table
                        .inner_join(
                            role_permissions::table.on(role_permissions::role.eq(user_roles::role)),
                        )
                        .filter(user_roles::user_id.eq(caller.id))
                        .filter(role_permissions::action.eq(action))
                        .filter(role_permissions::resource.eq(resource)),
                ))
                .get_result(conn)?)
            })
            .await
    }

    /// The check every admin route makes: 403 `INSUFFICIENT_PERMISSIONS` unless permitted.
    pub async fn require(
        &self,
        caller: AuthUser,
        action: Action,
        resource: Resource,
    ) -> ServiceResult<()> {
        if self.permitted(caller, action, resource).await? {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorCode::InsufficientPermissions,
            format!(
                "Your roles do not allow {} on {}",
                action.as_str(),
                resource.as_str()
            ),
        )
        .with_data(serde_json::json!({ "action": action, "resource": resource })))
    }

    /// Each user's roles, `user` first, for the users given.
    pub async fn roles_of(
        &self,
        user_ids: Vec<Uuid>,
    ) -> ServiceResult<BTreeMap<Uuid, Vec<String>>> {
        self.db
            .run(move |conn| {
                let grants: Vec<(Uuid, String)> = user_roles::table
                    .filter(user_roles::user_id.eq_any(&user_ids))
                    .order((user_roles::user_id, user_roles::role))
                    .select((user_roles::user_id, user_roles::role))
                    .load(conn)?;
                let mut roles: BTreeMap<Uuid, Vec<String>> = user_ids
                    .into_iter()
                    .map(|id| (id, vec![USER_ROLE.to_owned()]))
                    .collect();
                for (user, role) in grants {
                    roles.entry(user).or_default().push(role);
                }
                Ok(roles)
            })
            .await
    }

    /// Gives `user_id` the role (again is fine). Every account holds `user` already.
    pub async fn grant(&self, user_id: Uuid, role: RoleName) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                if role.as_str() != USER_ROLE {
                    return grant_role(conn, user_id, role.as_str());
                }
                let exists: bool = diesel::select(diesel::dsl::exists(users::table.find(user_id)))
                    .get_result(conn)?;
                exists
                    .then_some(())
                    .ok_or_else(|| ServiceError::not_found("User"))
            })
            .await
    }

    /// For the `api admin grant EMAIL` command: the first admin comes from the operator.
    pub async fn grant_admin_by_email(&self, email: Email) -> ServiceResult<Uuid> {
        self.db
            .run(move |conn| {
                let user_id: Uuid = users::table
                    .filter(users::email.eq(email.as_str()))
                    .select(users::id)
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Account"))?;
                grant_role(conn, user_id, ADMIN_ROLE)?;
                Ok(user_id)
            })
            .await
    }

    pub async fn revoke(&self, user_id: Uuid, role: RoleName) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                let target = user_roles::table.find((user_id, role.as_str()));
                match diesel::delete(target).execute(conn)? {
                    0 => Err(ServiceError::not_found("Role grant")),
                    _ => Ok(()),
                }
            })
            .await
    }

    /// Defines a named role; 409 when the name is taken.
    pub async fn create_role(&self, role: Role) -> ServiceResult<Role> {
        let name = RoleName::parse(&role.name)?;
        if role.description.chars().count() > 200 {
            return Err(ServiceError::invalid_field(
                "description",
                "A role's description is at most 200 characters",
            ));
        }
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    diesel::insert_into(roles::table)
                        .values((
                            roles::name.eq(name.as_str()),
                            roles::description.eq(&role.description),
                        ))
                        .execute(conn)
                        .map_err(|err| match err {
                            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                                ServiceError::conflict("A role with this name exists")
                            }
                            other => other.into(),
                        })?;
                    let rows: Vec<_> = role
                        .permissions
                        .iter()
                        .map(|(action, resource)| {
                            (
                                role_permissions::role.eq(name.as_str()),
                                role_permissions::action.eq(*action),
                                role_permissions::resource.eq(*resource),
                            )
                        })
                        .collect();
                    diesel::insert_into(role_permissions::table)
                        .values(rows)
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                    Ok(role)
                })
            })
            .await
    }

    /// Every role with its permissions, by name.
    pub async fn roles(&self) -> ServiceResult<Vec<Role>> {
        self.db
            .run(|conn| {
                let defined: Vec<(String, String)> = roles::table
                    .order(roles::name)
                    .select((roles::name, roles::description))
                    .load(conn)?;
                let granted: Vec<(String, Action, Resource)> = role_permissions::table
                    .order((role_permissions::role, role_permissions::resource))
                    .select((
                        role_permissions::role,
                        role_permissions::action,
                        role_permissions::resource,
                    ))
                    .load(conn)?;
                Ok(defined
                    .into_iter()
                    .map(|(name, description)| Role {
                        permissions: granted
                            .iter()
                            .filter(|(role, _, _)| *role == name)
                            .map(|(_, action, resource)| (*action, *resource))
                            .collect(),
                        name,
                        description,
                    })
                    .collect())
            })
            .await
    }
}

fn grant_role(conn: &mut PgConn, user_id: Uuid, role: &str) -> ServiceResult<()> {
    diesel::insert_into(user_roles::table)
        .values((user_roles::user_id.eq(user_id), user_roles::role.eq(role)))
        .on_conflict_do_nothing()
        .execute(conn)
        .map_err(|err| match err {
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, ref info)
                if info.constraint_name() == Some("user_roles_role_fkey") =>
            {
                ServiceError::not_found("Role")
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                ServiceError::not_found("User")
            }
            other => other.into(),
        })?;
    Ok(())
}
