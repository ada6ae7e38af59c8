//! The writes that add rows to `clips`, the library's table. Whatever adds clips (a job's
//! uploaded files, an import, a finished direct upload) adds them here, inside its own
//! transaction, so the table has one owner.

use diesel::prelude::*;

use db::models::ClipRow;
use db::schema::clips;

/// Adds `rows` to their owners' libraries; the rows as stored.
pub fn clips(conn: &mut PgConnection, rows: &[ClipRow]) -> QueryResult<Vec<ClipRow>> {
    diesel::insert_into(clips::table)
        .values(rows)
        .returning(ClipRow::as_returning())
        .get_results(conn)
}

/// Adds an imported clip unless its owner's library already holds the same platform clip
/// (a sync on another worker got there first); whether it was added.
pub fn imported(conn: &mut PgConnection, row: &ClipRow) -> QueryResult<bool> {
    let added = diesel::insert_into(clips::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(added > 0)
}
