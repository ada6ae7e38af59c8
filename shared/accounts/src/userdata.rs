//! A user's application data (seed 003): small JSON values under keys, scoped by application,
//! within a size cap per value and a key quota per user.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use serde_json::{json, Value};

use db::models::UserDataRow;
use db::schema::{user_data, users};
use db::Db;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::userdata::{ApplicationId, DataKey};
use settings::Limits;

/// What a user may store.
#[derive(Debug, Clone, Copy)]
pub struct DataQuota {
    /// Largest value, as JSON text.
    pub value_bytes: usize,
    /// Keys over all of the user's applications.
    pub keys: i64,
}

impl From<&Limits> for DataQuota {
    fn from(limits: &Limits) -> Self {
        Self {
            value_bytes: limits.user_data_value_bytes,
            keys: limits.user_data_keys,
        }
    }
}

/// A stored key without its value, for listings.
#[derive(Debug, Clone)]
pub struct DataSummary {
    pub key: String,
    pub size_bytes: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct UserDataService {
    db: Db,
    quota: DataQuota,
}

impl UserDataService {
    pub fn new(db: Db, quota: DataQuota) -> Self {
        Self { db, quota }
    }

    /// Stores `value` under `key`, replacing what was there. A new key past the quota is
    /// refused; replacing an existing one never is.
    pub async fn set(
        &self,
        user: AuthUser,
        application: ApplicationId,
        key: DataKey,
        value: Value,
    ) -> ServiceResult<UserDataRow> {
        let size = self.stored_size(&value)?;
        let quota = self.quota;
        let row = UserDataRow {
            user_id: user.id,
            application_id: application.as_str().to_owned(),
            key: key.as_str().to_owned(),
            value,
            size_bytes: size as i32,
            updated_at: Utc::now(),
        };
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    // One writer per user at a time, so two new keys cannot both take the
                    // last place in the quota.
                    users::table
                        .find(user.id)
                        .select(users::id)
                        .for_update()
                        .first::<uuid::Uuid>(conn)
                        .optional()?
                        .ok_or_else(ServiceError::account_gone)?;
                    check_key_quota(conn, &row, quota)?;
                    Ok(diesel::insert_into(user_data::table)
                        .values(&row)
                        .on_conflict((
                            user_data::user_id,
                            user_data::application_id,
                            user_data::key,
                        ))
                        .do_update()
                        .set((
                            user_data::value.eq(excluded(user_data::value)),
                            user_data::size_bytes.eq(excluded(user_data::size_bytes)),
                            user_data::updated_at.eq(excluded(user_data::updated_at)),
                        ))
                        .returning(UserDataRow::as_returning())
                        .get_result(conn)?)
                })
            })
            .await
    }

    /// The bytes `value` takes as JSON, if it may be stored: no NUL (PostgreSQL's JSONB has
    /// none) and within the quota.
    fn stored_size(&self, value: &Value) -> ServiceResult<usize> {
        if holds_nul(value) {
            return Err(ServiceError::invalid_field(
                "value",
                "Text in the value may not contain the NUL character (U+0000)",
            ));
        }
        let size = serde_json::to_vec(value)
            .map_err(ServiceError::internal)?
            .len();
        if size > self.quota.value_bytes {
            return Err(ServiceError::too_large(
                format!(
                    "The value is {size} bytes as JSON; at most {} are stored",
                    self.quota.value_bytes
                ),
                self.quota.value_bytes as u64,
            ));
        }
        Ok(size)
    }

    pub async fn get(
        &self,
        user: AuthUser,
        application: ApplicationId,
        key: DataKey,
    ) -> ServiceResult<UserDataRow> {
        self.db
            .run(move |conn| {
                user_data::table
                    .find((user.id, application.as_str(), key.as_str()))
                    .select(UserDataRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Data key"))
            })
            .await
    }

    /// The keys stored for `application`, in order.
    pub async fn keys(
        &self,
        user: AuthUser,
        application: ApplicationId,
    ) -> ServiceResult<Vec<DataSummary>> {
        self.db
            .run(move |conn| {
                let rows: Vec<(String, i32, DateTime<Utc>)> = user_data::table
                    .filter(user_data::user_id.eq(user.id))
                    .filter(user_data::application_id.eq(application.as_str()))
                    .order(user_data::key.asc())
                    .select((user_data::key, user_data::size_bytes, user_data::updated_at))
                    .load(conn)?;
                Ok(rows
                    .into_iter()
                    .map(|(key, size_bytes, updated_at)| DataSummary {
                        key,
                        size_bytes,
                        updated_at,
                    })
                    .collect())
            })
            .await
    }

    pub async fn delete(
        &self,
        user: AuthUser,
        application: ApplicationId,
        key: DataKey,
    ) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                let target = user_data::table.find((user.id, application.as_str(), key.as_str()));
                match diesel::delete(target).execute(conn)? {
                    0 => Err(ServiceError::not_found("Data key")),
                    _ => Ok(()),
                }
            })
            .await
    }
}

/// Whether any text in `value` (a string or an object's key) holds U+0000. Such values
/// are refused: PostgreSQL's text cannot hold NUL, and many clients cut strings there.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, field)| key.contains('\0') || holds_nul(field)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Refuses a new key once the user holds the quota's number of keys.
fn check_key_quota(
    conn: &mut db::PgConn,
    row: &UserDataRow,
    quota: DataQuota,
) -> ServiceResult<()> {
    let exists: bool = diesel::select(diesel::dsl::exists(user_data::table.find((
        row.user_id,
        row.application_id.as_str(),
        row.key.as_str(),
    ))))
    .get_result(conn)?;
    if exists {
        return Ok(());
    }
    let held: i64 = user_data::table
        .filter(user_data::user_id.eq(row.user_id))
        .count()
        .get_result(conn)?;
    if held >= quota.keys {
        return Err(ServiceError::new(
            ErrorCode::QuotaExceeded,
            format!("You store {held} keys, the most allowed: delete one to add another"),
        )
        .with_data(json!({ "quota": "user_data_keys", "limit": quota.keys })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found_anywhere_in_a_value() {
        assert!(!holds_nul(&json!({"a": ["b", 1, null, {"c": true}]})));
        assert!(holds_nul(&json!({"a": ["b\0"]})));
        assert!(holds_nul(&json!({"a": {"k\0": 1}})));
    }
}
