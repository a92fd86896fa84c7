//! The tables, as diesel sees them. Written by hand to match both migration sets; SQL types
//! are the ones both backends share (`Timestamp` holds UTC).
#![expect(missing_docs, reason = "diesel::table! generates undocumented modules")]

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    connections (id) {
        id -> Text,
        organization_id -> Text,
        tenant_id -> Text,
        client_id -> Text,
        auth_kind -> Text,
        secret_ciphertext -> Nullable<Binary>,
        secret_key_id -> Nullable<Text>,
        secret_expires_at -> Nullable<Timestamp>,
        status -> Text,
        last_error -> Nullable<Text>,
        granted_permissions -> Text,
        missing_permissions -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        consented_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    delegated_tokens (connection_id, principal) {
        connection_id -> Text,
        principal -> Text,
        token_ciphertext -> Binary,
        key_id -> Text,
        expires_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> Text,
        connection_id -> Text,
        sync_type -> Text,
        status -> Text,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
        report -> Text,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    sync_cursors (connection_id, resource) {
        connection_id -> Text,
        resource -> Text,
        round -> BigInt,
        full_round -> Bool,
        run_id -> Nullable<Text>,
        next_link -> Nullable<Text>,
        delta_link -> Nullable<Text>,
        time_cursor -> Nullable<Timestamp>,
        round_started_at -> Nullable<Timestamp>,
        pages -> BigInt,
        rows_written -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        display_name -> Nullable<Text>,
        user_principal_name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        surname -> Nullable<Text>,
        mail -> Nullable<Text>,
        department -> Nullable<Text>,
        job_title -> Nullable<Text>,
        office_location -> Nullable<Text>,
        mobile_phone -> Nullable<Text>,
        account_enabled -> Nullable<Bool>,
        user_type -> Nullable<Text>,
        created_at -> Nullable<Timestamp>,
        manager_id -> Nullable<Text>,
        last_sign_in_at -> Nullable<Timestamp>,
        last_non_interactive_sign_in_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        seen_round -> BigInt,
    }
}

diesel::table! {
    groups (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        display_name -> Nullable<Text>,
        description -> Nullable<Text>,
        mail -> Nullable<Text>,
        mail_nickname -> Nullable<Text>,
        kind -> Text,
        group_types -> Text,
        mail_enabled -> Nullable<Bool>,
        security_enabled -> Nullable<Bool>,
        visibility -> Nullable<Text>,
        created_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        seen_round -> BigInt,
    }
}

diesel::table! {
    group_members (connection_id, group_id, member_id) {
        connection_id -> Text,
        group_id -> Text,
        member_id -> Text,
        member_type -> Text,
        seen_round -> BigInt,
    }
}

diesel::table! {
    managed_devices (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        device_name -> Nullable<Text>,
        user_id -> Nullable<Text>,
        user_principal_name -> Nullable<Text>,
        operating_system -> Nullable<Text>,
        os_version -> Nullable<Text>,
        compliance_state -> Nullable<Text>,
        owner_type -> Nullable<Text>,
        is_encrypted -> Nullable<Bool>,
        manufacturer -> Nullable<Text>,
        model -> Nullable<Text>,
        serial_number -> Nullable<Text>,
        azure_ad_device_id -> Nullable<Text>,
        enrolled_at -> Nullable<Timestamp>,
        last_sync_at -> Nullable<Timestamp>,
        seen_round -> BigInt,
    }
}

diesel::table! {
    sign_ins (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        created_at -> Timestamp,
        user_id -> Nullable<Text>,
        user_principal_name -> Nullable<Text>,
        app_display_name -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        status_code -> Nullable<BigInt>,
        raw -> Text,
    }
}

diesel::table! {
    directory_audits (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        activity_at -> Timestamp,
        activity_display_name -> Nullable<Text>,
        category -> Nullable<Text>,
        result -> Nullable<Text>,
        raw -> Text,
    }
}

diesel::table! {
    security_alerts (connection_id, id) {
        connection_id -> Text,
        id -> Text,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
        title -> Nullable<Text>,
        severity -> Nullable<Text>,
        status -> Nullable<Text>,
        raw -> Text,
    }
}

diesel::joinable!(connections -> organizations (organization_id));
diesel::joinable!(sync_runs -> connections (connection_id));
diesel::allow_tables_to_appear_in_same_query!(organizations, connections, sync_runs);

diesel::table! {
    api_keys (id) {
        id -> Text,
        organization_id -> Text,
        name -> Text,
        secret_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sync_jobs (id) {
        id -> Text,
        organization_id -> Text,
        connection_id -> Text,
        sync_type -> Text,
        status -> Text,
        trigger -> Text,
        requested_by -> Nullable<Text>,
        attempts -> Integer,
        not_before -> Timestamp,
        lease_owner -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        run_id -> Nullable<Text>,
        progress -> Text,
        report -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(sync_jobs -> connections (connection_id));
diesel::allow_tables_to_appear_in_same_query!(connections, sync_jobs);

diesel::table! {
    oauth_states (state_hash) {
        state_hash -> Text,
        organization_id -> Text,
        connection_id -> Text,
        kind -> Text,
        verifier_ciphertext -> Binary,
        key_id -> Text,
        tenant -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        at -> Timestamp,
        organization_id -> Nullable<Text>,
        actor -> Text,
        action -> Text,
        target -> Text,
        outcome -> Text,
        request_id -> Nullable<Text>,
        detail -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_chain_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}
