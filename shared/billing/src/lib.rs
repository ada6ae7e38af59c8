//! Plans, entitlements and Stripe. `users.plan` is what every entitlement check reads;
//! only verified webhook events change it, each recorded once with its effect.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use diesel::prelude::*;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use uuid::Uuid;

use db::schema::{stripe_events, subscriptions, users};
use db::Db;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::plans::PlanId;
use domain::signing;
use settings::{BillingConfig, PlanConfig};

/// A plan as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanView {
    pub id: PlanId,
    pub name: String,
    /// US dollars per month.
    pub price: u32,
    pub features: Vec<String>,
    pub limits: PlanLimits,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanLimits {
    /// Longest `target_duration`, seconds.
    pub max_duration: u32,
    pub watermark: bool,
    pub priority: bool,
    /// Jobs queued or running at once; more wait in PENDING.
    pub active_jobs: i32,
}

/// The caller's subscription.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub plan: PlanId,
    /// Stripe's status (`active`, `past_due`, `canceled`…), or `none` on the free plan
    /// without a subscription.
    pub status: String,
    pub current_period_end: Option<DateTime<Utc>>,
    pub cancel_at_period_end: bool,
}

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied,
    /// Seen before: acknowledged, nothing changed.
    Duplicate,
    /// Older than what is already applied: recorded, nothing changed.
    Stale,
    /// A type this service does not act on.
    Ignored,
}

#[derive(Clone)]
pub struct BillingService {
    db: Db,
    config: Arc<BillingConfig>,
    stripe: stripe::Client,
}

impl BillingService {
    pub fn new(db: Db, config: BillingConfig) -> ServiceResult<Self> {
        let stripe = stripe::ClientBuilder::new(config.stripe_secret_key.clone())
            .url(config.stripe_api_base.clone())
            .timeout(config.stripe_timeout)
            .build()
            .map_err(|e| ServiceError::internal(format!("Stripe client: {e}")))?;
        Ok(Self {
            db,
            config: Arc::new(config),
            stripe,
        })
    }

    pub fn plan(&self, id: PlanId) -> &PlanConfig {
        self.config.plan(id)
    }

    pub fn plans(&self) -> Vec<PlanView> {
        PlanId::ALL
            .iter()
            .map(|&id| {
                let plan = self.plan(id);
                let mut features = vec![format!("{}s limit", plan.max_duration)];
                features.push(
                    if plan.forced_watermark {
                        "Watermark"
                    } else {
                        "No watermark"
                    }
                    .into(),
                );
                if plan.priority {
                    features.push("Priority rendering".into());
                }
                PlanView {
                    id,
                    name: plan.name.clone(),
                    price: plan.price_usd,
                    features,
                    limits: PlanLimits {
                        max_duration: plan.max_duration,
                        watermark: plan.forced_watermark,
                        priority: plan.priority,
                        active_jobs: plan.active_jobs,
                    },
                }
            })
            .collect()
    }

    /// The plan `user` is entitled to now.
    pub async fn plan_of(&self, user: AuthUser) -> ServiceResult<PlanId> {
        self.db.run(move |conn| plan_in(conn, user)).await
    }

    pub async fn subscription(&self, user: AuthUser) -> ServiceResult<SubscriptionView> {
        let (plan, row) = self
            .db
            .run(move |conn| {
                let plan = plan_in(conn, user)?;
                let row: Option<(String, Option<DateTime<Utc>>, bool)> = subscriptions::table
                    .find(user.id)
                    .select((
                        subscriptions::status,
                        subscriptions::current_period_end,
                        subscriptions::cancel_at_period_end,
                    ))
                    .first(conn)
                    .optional()?;
                Ok((plan, row))
            })
            .await?;
        let (status, current_period_end, cancel_at_period_end) =
            row.unwrap_or(("none".into(), None, false));
        Ok(SubscriptionView {
            plan,
            status,
            current_period_end,
            cancel_at_period_end,
        })
    }

    /// Starts a Stripe Checkout for `plan`, creating or reusing the user's Stripe customer.
    /// Returns the URL to send the user to.
    pub async fn checkout(&self, user: AuthUser, plan: &str) -> ServiceResult<String> {
        let plan: PlanId = plan.trim().parse().map_err(|()| {
            ServiceError::invalid_field(
                "plan",
                format!("Unknown plan; expected one of {}", PlanId::names()),
            )
        })?;
        if self.plan_of(user).await? == plan {
            return Err(
                ServiceError::conflict(format!("You are already on the {plan} plan"))
                    .with_data(serde_json::json!({ "plan": plan })),
            );
        }
        let Some(price) = self.plan(plan).stripe_price_id.clone() else {
            return Err(ServiceError::invalid_field(
                "plan",
                "The free plan needs no checkout; cancel the subscription instead",
            ));
        };
        let customer = self.customer_for(user).await?;
        let metadata = HashMap::from([
            ("user_id".to_owned(), user.id.to_string()),
            ("plan".to_owned(), plan.to_string()),
        ]);
        let mut subscription_data =
            stripe_checkout::checkout_session::CreateCheckoutSessionSubscriptionData::new();
        subscription_data.metadata = Some(metadata.clone());
        let mut line_item =
            stripe_checkout::checkout_session::CreateCheckoutSessionLineItems::new();
        line_item.price = Some(price);
        line_item.quantity = Some(1);
        let session = stripe_checkout::checkout_session::CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Subscription)
            .customer(customer)
            .client_reference_id(user.id.to_string())
            .metadata(metadata)
            .subscription_data(subscription_data)
            .line_items(vec![line_item])
            .success_url(self.config.checkout_success_url.clone())
            .cancel_url(self.config.checkout_cancel_url.clone())
            .send(&self.stripe)
            .await
            .map_err(provider_error)?;
        session.url.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::PaymentProviderError,
                "Stripe returned a session without a URL",
            )
        })
    }

    /// A Stripe customer portal session for the user, where they manage their payment
    /// method, invoices and subscription; a user who never checked out has no customer there
    /// (409).
    pub async fn portal(&self, user: AuthUser) -> ServiceResult<String> {
        let customer = self
            .db
            .run(move |conn| {
                Ok(users::table
                    .find(user.id)
                    .select(users::stripe_customer_id)
                    .first::<Option<String>>(conn)?)
            })
            .await?
            .ok_or_else(|| {
                ServiceError::conflict(
                    "You have no billing account yet: subscribe to a plan through checkout first",
                )
            })?;
        let session = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(self.config.billing_portal_return_url.clone())
            .send(&self.stripe)
            .await
            .map_err(provider_error)?;
        Ok(session.url)
    }

    /// The user's Stripe customer id, created on first use.
    async fn customer_for(&self, user: AuthUser) -> ServiceResult<String> {
        let (email, existing) = self
            .db
            .run(move |conn| {
                Ok(users::table
                    .find(user.id)
                    .select((users::email, users::stripe_customer_id))
                    .first::<(String, Option<String>)>(conn)?)
            })
            .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let customer = stripe_core::customer::CreateCustomer::new()
            .email(email)
            .metadata(HashMap::from([("user_id".to_owned(), user.id.to_string())]))
            .send(&self.stripe)
            .await
            .map_err(provider_error)?;
        let created = customer.id.as_str().to_owned();
        // A concurrent checkout may have stored one first; theirs wins and is reused.
        self.db
            .run(move |conn| {
                diesel::update(
                    users::table
                        .find(user.id)
                        .filter(users::stripe_customer_id.is_null()),
                )
                .set(users::stripe_customer_id.eq(&created))
                .execute(conn)?;
                Ok(users::table
                    .find(user.id)
                    .select(users::stripe_customer_id)
                    .first::<Option<String>>(conn)?
                    .unwrap_or(created))
            })
            .await
    }

    /// Deletes the user's Stripe customer, if they have one, before their account goes:
    /// Stripe then cancels its subscriptions at once and keeps no more of their details.
    /// A customer Stripe no longer knows counts as deleted.
    pub async fn forget_customer(&self, user: Uuid) -> ServiceResult<()> {
        let customer = self
            .db
            .run(move |conn| {
                Ok(users::table
                    .find(user)
                    .select(users::stripe_customer_id)
                    .first::<Option<String>>(conn)
                    .optional()?
                    .flatten())
            })
            .await?;
        let Some(customer) = customer else {
            return Ok(());
        };
        match stripe_core::customer::DeleteCustomer::new(customer.as_str())
            .send(&self.stripe)
            .await
        {
            Ok(_) | Err(stripe::StripeError::Stripe(_, 404)) => Ok(()),
            Err(err) => Err(provider_error(err)),
        }
    }

    /// Verifies and applies one webhook delivery. Nothing slow happens here: no call to
    /// Stripe, one short transaction.
    pub async fn handle_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
    ) -> ServiceResult<WebhookOutcome> {
        verify_signature(
            payload,
            signature,
            &self.config.stripe_webhook_secret,
            self.config.webhook_tolerance,
            Utc::now().timestamp(),
        )?;
        let event: Event = serde_json::from_slice(payload)
            .map_err(|e| ServiceError::invalid_field("body", format!("Not a Stripe event: {e}")))?;
        let change = Change::from_event(&event)?;
        let retentions = Retentions {
            free: self.config.free.output_retention,
            pro: self.config.pro.output_retention,
        };
        self.db
            .run(move |conn| conn.transaction(|conn| apply(conn, &event, change, retentions)))
            .await
    }
}

fn plan_in(conn: &mut PgConnection, user: AuthUser) -> ServiceResult<PlanId> {
    users::table
        .find(user.id)
        .select(users::plan)
        .first(conn)
        .optional()?
        .ok_or_else(ServiceError::account_gone)
}

fn provider_error(err: stripe::StripeError) -> ServiceError {
    tracing::warn!(error = %err, "Stripe request failed");
    ServiceError::new(
        ErrorCode::PaymentProviderError,
        "The payment provider could not be reached; try again",
    )
    .with_source(err.to_string())
}

/// Stripe sends one `v1` entry, two while a secret is being rolled; more is not Stripe.
const MAX_SIGNATURES: usize = 4;
const MAX_SIGNATURE_HEADER: usize = 1024;

/// Checks `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` against the raw body, as Stripe
/// signs it: HMAC-SHA256 over `"{t}.{body}"`, compared in constant time, `t` within tolerance.
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    tolerance: Duration,
    now: i64,
) -> ServiceResult<()> {
    let invalid = |why: &str| {
        ServiceError::new(
            ErrorCode::InvalidSignature,
            format!("Webhook signature {why}"),
        )
    };
    let header = header.ok_or_else(|| invalid("missing: send the Stripe-Signature header"))?;
    if header.len() > MAX_SIGNATURE_HEADER {
        return Err(invalid("header is too long"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| invalid("has no timestamp"))?;
    if signatures.is_empty() {
        return Err(invalid("has no v1 signature"));
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(invalid("has too many v1 entries"));
    }
    if (now - timestamp).unsigned_abs() > tolerance.as_secs() {
        return Err(invalid("is too old (or from the future)"));
    }
    // One MAC over the body, compared (in constant time) with each entry.
    let expected = signing::mac(secret, timestamp, payload)
        .finalize()
        .into_bytes();
    let verifies = signatures
        .iter()
        .any(|signature| bool::from(expected[..].ct_eq(signature)));
    if verifies {
        Ok(())
    } else {
        Err(invalid("does not match"))
    }
}

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    created: i64,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

/// What an event means for one user's subscription, read from the event alone.
#[derive(Debug)]
enum Change {
    None,
    Subscription(SubscriptionChange),
}

#[derive(Debug)]
struct SubscriptionChange {
    user: UserRef,
    subscription_id: Option<String>,
    plan: Option<PlanId>,
    status: String,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: Option<bool>,
}

/// How an event names its user: our id (metadata, client_reference_id) or the customer.
#[derive(Debug)]
struct UserRef {
    id: Option<Uuid>,
    customer: Option<String>,
    subscription_id: Option<String>,
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str().map(str::to_owned)
}

fn timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(value?.as_i64()?, 0).single()
}

impl Change {
    fn from_event(event: &Event) -> ServiceResult<Self> {
        let object = &event.data.object;
        let change = match event.type_.as_str() {
            "checkout.session.completed" => checkout_completed(object),
            "customer.subscription.created" | "customer.subscription.updated" => {
                let status = text(object, &["status"])
                    .ok_or_else(|| ServiceError::invalid_field("data.object.status", "missing"))?;
                Some(subscription_changed(object, status))
            }
            "customer.subscription.deleted" => {
                Some(subscription_changed(object, "canceled".to_owned()))
            }
            "invoice.paid" => invoice_settled(object, "active"),
            "invoice.payment_failed" => invoice_settled(object, "past_due"),
            _ => None,
        };
        Ok(change.map_or(Self::None, Self::Subscription))
    }
}

fn user_in_metadata(object: &Value) -> Option<Uuid> {
    text(object, &["metadata", "user_id"]).and_then(|id| id.parse().ok())
}

fn plan_in_metadata(object: &Value) -> Option<PlanId> {
    text(object, &["metadata", "plan"]).and_then(|p| p.parse().ok())
}

/// A finished Checkout of a subscription: the plan it sold is active.
fn checkout_completed(object: &Value) -> Option<SubscriptionChange> {
    if text(object, &["mode"]).as_deref() != Some("subscription") {
        return None;
    }
    let id = text(object, &["client_reference_id"])
        .and_then(|id| id.parse().ok())
        .or(user_in_metadata(object));
    let subscription_id = text(object, &["subscription"]);
    Some(SubscriptionChange {
        user: UserRef {
            id,
            customer: text(object, &["customer"]),
            subscription_id: subscription_id.clone(),
        },
        subscription_id,
        plan: plan_in_metadata(object).or(Some(PlanId::Pro)),
        status: "active".into(),
        current_period_end: None,
        cancel_at_period_end: None,
    })
}

/// A subscription created, updated or deleted (`status` is Stripe's, or `canceled`).
fn subscription_changed(object: &Value, status: String) -> SubscriptionChange {
    let subscription_id = text(object, &["id"]);
    // Newer API versions keep the period on the subscription's items.
    let period_end = object
        .get("current_period_end")
        .or_else(|| object.pointer("/items/data/0/current_period_end"));
    SubscriptionChange {
        user: UserRef {
            id: user_in_metadata(object),
            customer: text(object, &["customer"]),
            subscription_id: subscription_id.clone(),
        },
        subscription_id,
        plan: plan_in_metadata(object),
        status,
        current_period_end: timestamp(period_end),
        cancel_at_period_end: object.get("cancel_at_period_end").and_then(Value::as_bool),
    }
}

/// An invoice of a subscription paid (`active`) or failed (`past_due`).
fn invoice_settled(object: &Value, status: &str) -> Option<SubscriptionChange> {
    let subscription_id = text(object, &["subscription"])
        .or_else(|| text(object, &["parent", "subscription_details", "subscription"]))?;
    let user = text(
        object,
        &["parent", "subscription_details", "metadata", "user_id"],
    )
    .and_then(|id| id.parse().ok());
    Some(SubscriptionChange {
        user: UserRef {
            id: user,
            customer: text(object, &["customer"]),
            subscription_id: Some(subscription_id.clone()),
        },
        subscription_id: Some(subscription_id),
        plan: None,
        status: status.into(),
        current_period_end: None,
        cancel_at_period_end: None,
    })
}

/// Statuses in which the subscriber keeps the paid plan. `past_due` keeps it while Stripe
/// retries the payment; `unpaid`, `canceled` and `incomplete*` do not.
fn entitled(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

fn apply(
    conn: &mut PgConnection,
    event: &Event,
    change: Change,
    retentions: Retentions,
) -> ServiceResult<WebhookOutcome> {
    let created = Utc
        .timestamp_opt(event.created, 0)
        .single()
        .unwrap_or_else(Utc::now);
    if !record_event(conn, event, created)? {
        return Ok(WebhookOutcome::Duplicate);
    }
    let Change::Subscription(change) = change else {
        return Ok(WebhookOutcome::Ignored);
    };
    let Some(user_id) = find_user(conn, &change.user)? else {
        tracing::warn!(event = %event.id, "webhook names no known user; ignored");
        return Ok(WebhookOutcome::Ignored);
    };
    if let Some(customer) = &change.user.customer {
        diesel::update(
            users::table
                .find(user_id)
                .filter(users::stripe_customer_id.is_null()),
        )
        .set(users::stripe_customer_id.eq(customer))
        .execute(conn)?;
    }
    let Some(plan) = plan_after(conn, user_id, &change, created)? else {
        return Ok(WebhookOutcome::Stale);
    };
    save_subscription(conn, user_id, &change, plan, created)?;
    let entitlement = if entitled(&change.status) {
        plan
    } else {
        PlanId::Free
    };
    entitle(conn, user_id, entitlement, retentions.of(entitlement))?;
    tracing::info!(event = %event.id, kind = %event.type_, %user_id, status = %change.status, plan = %entitlement, "subscription updated");
    Ok(WebhookOutcome::Applied)
}

/// Records the event once; false when it was seen before (Stripe redelivers).
fn record_event(
    conn: &mut PgConnection,
    event: &Event,
    created: DateTime<Utc>,
) -> ServiceResult<bool> {
    let recorded = diesel::insert_into(stripe_events::table)
        .values((
            stripe_events::id.eq(&event.id),
            stripe_events::type_.eq(&event.type_),
            stripe_events::created.eq(created),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(recorded > 0)
}

/// The plan the change leaves the subscription on, or `None` when the event is older than
/// what the subscription already reflects (events arrive out of order). Locks the row.
fn plan_after(
    conn: &mut PgConnection,
    user_id: Uuid,
    change: &SubscriptionChange,
    created: DateTime<Utc>,
) -> ServiceResult<Option<PlanId>> {
    let current: Option<(Option<String>, PlanId, DateTime<Utc>)> = subscriptions::table
        .find(user_id)
        .select((
            subscriptions::stripe_subscription_id,
            subscriptions::plan,
            subscriptions::last_event_at,
        ))
        .for_update()
        .first(conn)
        .optional()?;
    // An event older than the last one applied never wins, whichever subscription it is
    // about: an older subscription's events never override a newer one's.
    if current
        .as_ref()
        .is_some_and(|(_, _, last_event_at)| created < *last_event_at)
    {
        return Ok(None);
    }
    Ok(Some(
        change
            .plan
            .or_else(|| current.as_ref().map(|(_, plan, _)| *plan))
            .unwrap_or(PlanId::Pro),
    ))
}

fn save_subscription(
    conn: &mut PgConnection,
    user_id: Uuid,
    change: &SubscriptionChange,
    plan: PlanId,
    created: DateTime<Utc>,
) -> ServiceResult<()> {
    use diesel::{
        dsl::sql,
        sql_types::{Nullable, Text, Timestamptz},
    };
    let now = Utc::now();
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::user_id.eq(user_id),
            subscriptions::stripe_subscription_id.eq(&change.subscription_id),
            subscriptions::plan.eq(plan),
            subscriptions::status.eq(&change.status),
            subscriptions::current_period_end.eq(change.current_period_end),
            subscriptions::cancel_at_period_end.eq(change.cancel_at_period_end.unwrap_or(false)),
            subscriptions::last_event_at.eq(created),
            subscriptions::updated_at.eq(now),
        ))
        .on_conflict(subscriptions::user_id)
        .do_update()
        .set((
            subscriptions::stripe_subscription_id.eq(sql::<Nullable<Text>>(
                "COALESCE(excluded.stripe_subscription_id, subscriptions.stripe_subscription_id)",
            )),
            subscriptions::plan.eq(plan),
            subscriptions::status.eq(&change.status),
            subscriptions::current_period_end.eq(sql::<Nullable<Timestamptz>>(
                "COALESCE(excluded.current_period_end, subscriptions.current_period_end)",
            )),
            subscriptions::last_event_at.eq(created),
            subscriptions::updated_at.eq(now),
        ))
        .execute(conn)?;
    if let Some(cancel) = change.cancel_at_period_end {
        diesel::update(subscriptions::table.find(user_id))
            .set(subscriptions::cancel_at_period_end.eq(cancel))
            .execute(conn)?;
    }
    Ok(())
}

/// Puts the user on `plan`: its entitlements, and its output retention for every output
/// not yet deleted (an upgrade keeps them longer, a downgrade shortens their life).
fn entitle(
    conn: &mut PgConnection,
    user_id: Uuid,
    plan: PlanId,
    retention: Option<Duration>,
) -> ServiceResult<()> {
    diesel::update(users::table.find(user_id))
        .set(users::plan.eq(plan))
        .execute(conn)?;
    engine::retention::retain_outputs_for(conn, user_id, retention)?;
    Ok(())
}

/// Each plan's output retention, for [`entitle`].
#[derive(Debug, Clone, Copy)]
struct Retentions {
    free: Option<Duration>,
    pro: Option<Duration>,
}

impl Retentions {
    fn of(self, plan: PlanId) -> Option<Duration> {
        match plan {
            PlanId::Free => self.free,
            PlanId::Pro => self.pro,
        }
    }
}

fn find_user(conn: &mut PgConnection, user: &UserRef) -> ServiceResult<Option<Uuid>> {
    if let Some(id) = user.id {
        if users::table
            .find(id)
            .select(users::id)
            .first::<Uuid>(conn)
            .optional()?
            .is_some()
        {
            return Ok(Some(id));
        }
    }
    if let Some(subscription) = &user.subscription_id {
        let found = subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription))
            .select(subscriptions::user_id)
            .first(conn)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    match &user.customer {
        Some(customer) => Ok(users::table
            .filter(users::stripe_customer_id.eq(customer))
            .select(users::id)
            .first(conn)
            .optional()?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Just the hex signature of a Stripe header.
    fn sign(secret: &str, t: i64, body: &[u8]) -> String {
        let header = signing::header(secret, t, body);
        header.split_once(",v1=").unwrap().1.to_owned()
    }

    #[test]
    fn signatures_verify_as_stripe_signs_them() {
        let (secret, body, now) = ("whsec_test", br#"{"id":"evt_1"}"#.as_slice(), 1_700_000_000);
        let tolerance = Duration::from_secs(300);
        let good = sign(secret, now, body);
        let check =
            |header: &str, at: i64| verify_signature(body, Some(header), secret, tolerance, at);
        assert!(check(&format!("t={now},v1={good}"), now).is_ok());
        assert!(
            check(
                &format!("t={now},v1={},v1={good},v0=abc", "00".repeat(32)),
                now + 299
            )
            .is_ok(),
            "any v1 may match"
        );
        assert!(
            check(&format!("t={now},v1={good}"), now + 301).is_err(),
            "stale"
        );
        assert!(
            check(&format!("t={},v1={good}", now + 1), now).is_err(),
            "timestamp is signed"
        );
        assert!(
            check(
                &format!("t={now},v1={}", sign("whsec_other", now, body)),
                now
            )
            .is_err(),
            "wrong secret"
        );
        assert!(check(&format!("t={now}"), now).is_err(), "no signature");
        assert!(check(&format!("v1={good}"), now).is_err(), "no timestamp");
        assert!(
            verify_signature(body, None, secret, tolerance, now).is_err(),
            "no header"
        );
        let tampered = br#"{"id":"evt_2"}"#;
        assert!(verify_signature(
            tampered,
            Some(&format!("t={now},v1={good}")),
            secret,
            tolerance,
            now
        )
        .is_err());
    }
}
