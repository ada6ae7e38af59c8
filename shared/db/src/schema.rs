// @generated automatically by Diesel CLI.

diesel::table! {
    account_syncs (id) {
        id -> Uuid,
        user_id -> Uuid,
        link_id -> Uuid,
        status -> Text,
        found -> Int4,
        imported -> Int4,
        failed -> Int4,
        error -> Nullable<Text>,
        held_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    callback_deliveries (job_id) {
        job_id -> Uuid,
        url -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        abandoned_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    clips (id) {
        id -> Uuid,
        user_id -> Uuid,
        source -> Text,
        external_id -> Nullable<Text>,
        label -> Text,
        storage_key -> Text,
        container -> Text,
        size_bytes -> Int8,
        status -> Text,
        rejection -> Nullable<Text>,
        duration_seconds -> Nullable<Float8>,
        width -> Nullable<Int4>,
        height -> Nullable<Int4>,
        has_audio -> Nullable<Bool>,
        thumbnail_key -> Nullable<Text>,
        analysis -> Nullable<Jsonb>,
        examining_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        facecam -> Nullable<Text>,
    }
}

diesel::table! {
    direct_uploads (id) {
        id -> Uuid,
        user_id -> Uuid,
        clip_id -> Uuid,
        storage_key -> Text,
        s3_upload_id -> Text,
        label -> Text,
        size_bytes -> Int8,
        part_bytes -> Int8,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        completing_until -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_tokens (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        purpose -> Text,
        email -> Text,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    ended_sessions (session_id) {
        session_id -> Uuid,
        ended_at -> Timestamptz,
        forget_after -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        job_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    import_failures (link_id, external_id) {
        link_id -> Uuid,
        external_id -> Text,
        title -> Text,
        attempts -> Int4,
        last_error -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    job_inputs (job_id, position) {
        job_id -> Uuid,
        position -> Int2,
        storage_key -> Text,
        label -> Text,
        container -> Text,
        size_bytes -> Int8,
        clip_id -> Nullable<Uuid>,
        from_library -> Bool,
    }
}

diesel::table! {
    job_outputs (job_id, format) {
        job_id -> Uuid,
        format -> Text,
        storage_key -> Text,
        width -> Int4,
        height -> Int4,
        duration_seconds -> Float8,
        size_bytes -> Int8,
        created_at -> Timestamptz,
        poster_key -> Nullable<Text>,
    }
}

diesel::table! {
    jobs (id) {
        id -> Uuid,
        user_id -> Uuid,
        status -> Text,
        stage -> Nullable<Text>,
        progress -> Int2,
        target_duration -> Int4,
        style -> Text,
        formats -> Array<Text>,
        hud_remove -> Bool,
        watermark -> Bool,
        attempts -> Int4,
        error_code -> Nullable<Text>,
        error_message -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        cancel_requested_at -> Nullable<Timestamptz>,
        inputs_purged_at -> Nullable<Timestamptz>,
        dispatched_at -> Nullable<Timestamptz>,
        dispatches -> Int4,
        run_after -> Timestamptz,
        lease_token -> Nullable<Uuid>,
        lease_expires_at -> Nullable<Timestamptz>,
        callback_url -> Nullable<Text>,
        output_retention_secs -> Nullable<Int8>,
        outputs_expired_at -> Nullable<Timestamptz>,
        timings -> Nullable<Jsonb>,
        request_id -> Nullable<Text>,
        music -> Nullable<Text>,
        facecam -> Nullable<Text>,
        title -> Nullable<Text>,
        fps -> Nullable<Int2>,
    }
}

diesel::table! {
    linked_accounts (id) {
        id -> Uuid,
        user_id -> Uuid,
        provider -> Text,
        external_id -> Text,
        display_name -> Text,
        access_token -> Nullable<Bytea>,
        refresh_token -> Nullable<Bytea>,
        token_expires_at -> Nullable<Timestamptz>,
        scopes -> Array<Text>,
        last_synced_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    mfa_recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    montage_views (job_id, day, viewer) {
        job_id -> Uuid,
        day -> Date,
        viewer -> Bytea,
        source -> Text,
    }
}

diesel::table! {
    oauth_states (state_hash) {
        state_hash -> Bytea,
        user_id -> Uuid,
        provider -> Text,
        pkce_verifier -> Nullable<Bytea>,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        browser_hash -> Bytea,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        family_id -> Uuid,
        token_hash -> Bytea,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    role_permissions (role, action, resource) {
        role -> Text,
        action -> Text,
        resource -> Text,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    share_links (token) {
        token -> Text,
        job_id -> Uuid,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    social_posts (id) {
        id -> Uuid,
        user_id -> Uuid,
        job_id -> Uuid,
        link_id -> Nullable<Uuid>,
        platform -> Text,
        format -> Text,
        caption -> Text,
        status -> Text,
        post_url -> Nullable<Text>,
        error -> Nullable<Text>,
        attempts -> Int4,
        upload_session -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        held_until -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        account_name -> Text,
    }
}

diesel::table! {
    storage_purges (prefix) {
        prefix -> Text,
        not_before -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stripe_events (id) {
        id -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        created -> Timestamptz,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    subscriptions (user_id) {
        user_id -> Uuid,
        stripe_subscription_id -> Nullable<Text>,
        plan -> Text,
        status -> Text,
        current_period_end -> Nullable<Timestamptz>,
        cancel_at_period_end -> Bool,
        last_event_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_data (user_id, application_id, key) {
        user_id -> Uuid,
        application_id -> Text,
        key -> Text,
        value -> Json,
        size_bytes -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_interests (user_id, interest) {
        user_id -> Uuid,
        interest -> Text,
        kind -> Text,
    }
}

diesel::table! {
    user_roles (user_id, role) {
        user_id -> Uuid,
        role -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        plan -> Text,
        created_at -> Timestamptz,
        stripe_customer_id -> Nullable<Text>,
        username -> Nullable<Text>,
        display_name -> Nullable<Text>,
        email_verified_at -> Nullable<Timestamptz>,
        mfa_secret -> Nullable<Bytea>,
        mfa_enabled_at -> Nullable<Timestamptz>,
        mfa_last_step -> Nullable<Int8>,
    }
}

diesel::table! {
    view_salts (day) {
        day -> Date,
        salt -> Bytea,
    }
}

diesel::table! {
    weekly_montages (id) {
        id -> Uuid,
        user_id -> Uuid,
        week_start -> Timestamptz,
        week_end -> Timestamptz,
        outcome -> Text,
        job_id -> Nullable<Uuid>,
        clip_count -> Int4,
        visibility -> Text,
        featured_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    weekly_runs (week_end) {
        week_end -> Timestamptz,
        completed_at -> Timestamptz,
    }
}

diesel::table! {
    weekly_settings (user_id) {
        user_id -> Uuid,
        enabled -> Bool,
        style -> Nullable<Text>,
        updated_at -> Timestamptz,
        music_id -> Nullable<Text>,
    }
}

diesel::joinable!(account_syncs -> linked_accounts (link_id));
diesel::joinable!(account_syncs -> users (user_id));
diesel::joinable!(callback_deliveries -> jobs (job_id));
diesel::joinable!(clips -> users (user_id));
diesel::joinable!(direct_uploads -> users (user_id));
diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(idempotency_keys -> jobs (job_id));
diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(import_failures -> linked_accounts (link_id));
diesel::joinable!(job_inputs -> clips (clip_id));
diesel::joinable!(job_inputs -> jobs (job_id));
diesel::joinable!(job_outputs -> jobs (job_id));
diesel::joinable!(jobs -> users (user_id));
diesel::joinable!(linked_accounts -> users (user_id));
diesel::joinable!(mfa_recovery_codes -> users (user_id));
diesel::joinable!(montage_views -> jobs (job_id));
diesel::joinable!(oauth_states -> users (user_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(role_permissions -> roles (role));
diesel::joinable!(share_links -> jobs (job_id));
diesel::joinable!(social_posts -> jobs (job_id));
diesel::joinable!(social_posts -> linked_accounts (link_id));
diesel::joinable!(social_posts -> users (user_id));
diesel::joinable!(subscriptions -> users (user_id));
diesel::joinable!(user_data -> users (user_id));
diesel::joinable!(user_interests -> users (user_id));
diesel::joinable!(user_roles -> roles (role));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(weekly_montages -> jobs (job_id));
diesel::joinable!(weekly_montages -> users (user_id));
diesel::joinable!(weekly_settings -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_syncs,
    callback_deliveries,
    clips,
    direct_uploads,
    email_tokens,
    ended_sessions,
    idempotency_keys,
    import_failures,
    job_inputs,
    job_outputs,
    jobs,
    linked_accounts,
    mfa_recovery_codes,
    montage_views,
    oauth_states,
    refresh_tokens,
    role_permissions,
    roles,
    share_links,
    social_posts,
    storage_purges,
    stripe_events,
    subscriptions,
    user_data,
    user_interests,
    user_roles,
    users,
    view_salts,
    weekly_montages,
    weekly_runs,
    weekly_settings,
);
