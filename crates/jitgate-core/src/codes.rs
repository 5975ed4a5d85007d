//! Every error code the API answers with, in one table: the code (stable, documented in
//! docs/api.md, never reused), its HTTP status, and what it means. Every crate's errors map
//! to a [`Code`] (`CoreError::code`, the server's `ServerError::code`); nothing matches on
//! code strings. The HTTP status is a number here so that the core needs no HTTP crate.

use std::fmt;

macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $status:literal, $meaning:literal; )*) => {
        /// A stable error code of the API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant),* }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as clients see it.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// The HTTP status answered with it.
            pub fn http_status(self) -> u16 {
                match self { $(Code::$variant => $status),* }
            }

            /// What it means, in words (the docs' table says the same).
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $meaning),* }
            }
        }
    };
}

error_codes! {
    MalformedJson = "malformed_json", 400, "the body is not JSON, or not sent as application/json";
    InvalidBody = "invalid_body", 422, "JSON of the wrong shape: wrong type, missing or unknown field";
    BadRequest = "bad_request", 400, "a bad query parameter or argument";
    InvalidCursor = "invalid_cursor", 400, "the page cursor was not given out by this list: start the list again without a cursor";
    Unauthenticated = "unauthenticated", 401, "no, unknown, expired or revoked token or API key; wrong identity or password";
    TotpRequired = "totp_required", 401, "a sign-in without a TOTP code did not succeed: send the code, or (without TOTP) the identity or password is wrong";
    BadTotp = "bad_totp", 401, "TOTP code wrong, old, already used, or no TOTP enrolled";
    PasskeyRequired = "passkey_required", 401, "the policy requires a passkey for this approval (@step_up(\"passkey\")); a TOTP code does not do";
    StepUpRequired = "step_up_required", 401, "this approval needs step-up: a fresh TOTP code or a passkey assertion bound to the request";
    LoginBackoff = "login_backoff", 429, "too many failed sign-ins or step-up codes for this identity or from this address: wait Retry-After seconds";
    LockedOut = "locked_out", 429, "too many failed sign-ins or step-up codes: refused until the lockout ends (Retry-After) or an administrator unlocks it";
    ServerBusy = "server_busy", 503, "too many passwords are being checked at once: retry after Retry-After seconds";
    TokenMalformed = "token_malformed", 401, "the federated token is not a JWT, too long, or lacks `iss`/`exp` or has them mistyped";
    UnknownIssuer = "unknown_issuer", 401, "no [[federation.issuers]] trusts the federated token's `iss`";
    TokenBadSignature = "token_bad_signature", 401, "the federated token's signature is wrong, by a key its issuer does not publish, or `alg` is none or HMAC";
    WrongAudience = "wrong_audience", 401, "the federated token's `aud` lacks the audience its issuer's trust requires";
    TokenExpired = "token_expired", 401, "the federated token expired: ask the platform for a fresh one";
    TokenNotYetValid = "token_not_yet_valid", 401, "the federated token's `nbf` or `iat` is in the future: check the clocks";
    TokenLifetimeTooLong = "token_lifetime_too_long", 401, "the federated token lives longer than a day: only short-lived platform tokens are taken";
    ClaimsNotBound = "claims_not_bound", 401, "no binding of the issuer's trust matches the federated token's claims";
    TokenReplayed = "token_replayed", 401, "this federated token was exchanged already: each token is taken once";
    FederationUnavailable = "federation_unavailable", 503, "the issuer's keys (JWKS) cannot be fetched, so no token of it is accepted: retry after Retry-After seconds";
    PasskeyChallengeUnknown = "passkey_challenge_unknown", 401, "no such passkey challenge: start the passkey step again";
    PasskeyChallengeOfAnother = "passkey_challenge_of_another", 401, "the passkey challenge was issued to another identity";
    PasskeyChallengeUsed = "passkey_challenge_used", 401, "the passkey challenge was used already (each is taken once): start the passkey step again";
    PasskeyChallengeExpired = "passkey_challenge_expired", 401, "the passkey challenge expired: start the passkey step again";
    PasskeyWrongRequest = "passkey_wrong_request", 401, "the passkey assertion was made for another request (or an enrolment)";
    PasskeyScopeChanged = "passkey_scope_changed", 401, "the request's scope digest is not the one the passkey challenge was bound to";
    PasskeyUnknownCredential = "passkey_unknown_credential", 401, "the passkey that answered is not enrolled";
    PasskeyRemoved = "passkey_removed", 401, "the passkey that answered was removed";
    PasskeyOfAnotherIdentity = "passkey_of_another_identity", 401, "the passkey that answered is enrolled by another identity";
    PasskeyCounterRegression = "passkey_counter_regression", 401, "the passkey's signature counter did not move forward (a cloned authenticator?)";
    PasskeyWrongOrigin = "passkey_wrong_origin", 401, "the passkey answered for another origin or relying-party id than [passkeys] configures";
    PasskeyUserNotVerified = "passkey_user_not_verified", 401, "the authenticator did not verify the user (PIN or biometrics)";
    PasskeyAssertionInvalid = "passkey_assertion_invalid", 401, "the passkey assertion does not verify against its challenge and enrolled key";
    PasskeyRegistrationInvalid = "passkey_registration_invalid", 422, "the passkey registration does not verify against its challenge";
    PasskeyAlreadyEnrolled = "passkey_already_enrolled", 409, "this passkey (credential id) is enrolled already";
    PasskeyNotEnrolled = "passkey_not_enrolled", 409, "the caller has no passkey enrolled: enrol one, or use the TOTP code";
    TooManyPasskeyCeremonies = "too_many_passkey_ceremonies", 429, "too many passkey ceremonies of this identity are open: answer one or wait Retry-After seconds";
    FreshAuthRequired = "fresh_auth_required", 401, "removing a passkey needs a sign-in less than 5 minutes old or a TOTP code";
    SsoStateMismatch = "sso_state_mismatch", 401, "the SSO callback's state is unknown, used, expired or was started in another browser: start the sign-in again";
    SsoProviderDenied = "sso_provider_denied", 401, "the OpenID provider did not sign the person in (declined, or its own error)";
    SsoCodeRejected = "sso_code_rejected", 401, "the OpenID provider refused to exchange the authorization code (used already, expired, or PKCE mismatch)";
    SsoNonceMismatch = "sso_nonce_mismatch", 401, "the ID token's nonce is not the one this sign-in sent";
    SsoUnmapped = "sso_unmapped", 403, "no [[sso.providers.map]] rule maps this login to an identity";
    SsoUnavailable = "sso_unavailable", 503, "the OpenID provider (discovery, keys or token endpoint) cannot be reached: retry after Retry-After seconds";
    SsoHandoffRejected = "sso_handoff_rejected", 401, "the CLI's SSO hand-off code is unknown, used, expired, or its verifier is wrong: run `jitgate login --sso` again";
    SsoOnly = "sso_only", 401, "this identity signs in through SSO only: its password is refused";
    ClientCertificateRequired = "client_certificate_required", 401, "a gateway called without its enrolled client certificate (mutual TLS)";
    ClientCertificateRefused = "client_certificate_refused", 401, "the client certificate names another identity, or is not the gateway's current one";
    Forbidden = "forbidden", 403, "the caller's roles do not allow this";
    IdentityDisabled = "identity_disabled", 403, "the identity is disabled";
    SeparationOfDuties = "separation_of_duties", 403, "the approver is the requester, the subject, an owner of a workload requester or subject, the owner of the standing exception requested, or minted the key that filed it";
    NotEligibleApprover = "not_eligible_approver", 403, "the approver lacks the role, group or site the obligations name";
    GrantNotFronted = "grant_not_fronted", 403, "a gateway reported events for, or asked a credential of, a grant on assets it does not front";
    AssetNotGranted = "asset_not_granted", 403, "the grant's scope names no access of this kind on that asset";
    NotFound = "not_found", 404, "unknown (or invisible to you) request, grant, identity, asset, key, route";
    WrongState = "wrong_state", 409, "the request or grant is not in a state that allows this";
    RequestLapsed = "request_lapsed", 409, "the request's window closed before it became active";
    NoLongerAllowed = "no_longer_allowed", 409, "the request no longer stands under the current context or policy; it was lapsed or denied and recorded";
    AlreadyApproved = "already_approved", 409, "this approver already decided; each approver counts once";
    ScopeDigestMismatch = "scope_digest_mismatch", 409, "the approval names another scope than the request's";
    LastAdministrator = "last_administrator", 409, "the change would leave no active administrator";
    NoCheckpoint = "no_checkpoint", 409, "the log holds no events yet, so there is no checkpoint to witness";
    CheckpointUnknown = "checkpoint_unknown", 409, "the note is not a checkpoint this server stored: cosign a checkpoint fetched from it";
    WitnessUnknown = "witness_unknown", 403, "a cosignature by a witness that is not in evidence.witnesses, or one that does not verify";
    GseqGap = "gseq_gap", 409, "a gateway's events skip sequence numbers; nothing of the batch was recorded";
    RecordingChainBroken = "recording_chain_broken", 409, "a recording.chunk event does not follow its session's previous chunk (index, offset, hash) or its session belongs to another gateway or grant; nothing of the batch was recorded";
    RecordingChunkUnknown = "recording_chunk_unknown", 409, "no recording.chunk event was recorded for this chunk yet: deliver the gateway's events first, then retry";
    RecordingChunkMismatch = "recording_chunk_mismatch", 409, "the chunk's framing or bytes differ from what its recording.chunk event recorded";
    InvalidRecordingChunk = "invalid_recording_chunk", 422, "the body is not one valid recording chunk frame (docs/gateway.md, Recordings)";
    AlreadyEnrolled = "already_enrolled", 409, "the gateway already has a certificate: renew with it, or an administrator resets the enrolment";
    Conflict = "conflict", 409, "a duplicate";
    AlreadyAttested = "already_attested", 409, "the grant's subject attested already; an attestation is given once";
    AlreadyDecided = "already_decided", 409, "the campaign item was decided already; decisions are not changed";
    CampaignIncomplete = "campaign_incomplete", 409, "the campaign still has undecided items; decide every item before closing it";
    EvidenceBroken = "evidence_broken", 409, "the evidence log fails verification: nothing is signed or exported over it";
    InvalidScope = "invalid_scope", 422, "a scope rule does not parse";
    InvalidSshPublicKey = "invalid_ssh_public_key", 422, "not one OpenSSH public key line of an accepted type and size";
    PublicKeyReused = "public_key_reused", 409, "this public key was already certified for another grant or identity";
    ScopeNotExposed = "scope_not_exposed", 422, "the asset has no such protocol endpoint or unit id";
    DurationAboveMaximum = "duration_above_maximum", 422, "longer than the policy allows";
    InvalidRequest = "invalid_request", 422, "missing reason, bad duration, window in the past, ...";
    ControlCharacter = "control_character", 422, "free text carries a control character, terminal escape or bidirectional override";
    EventTimeOutOfBounds = "event_time_out_of_bounds", 422, "a gateway's event is dated too far ahead of the server or before its grant existed";
    InvalidInventory = "invalid_inventory", 422, "the inventory is invalid (names the table and id)";
    InvalidPolicy = "invalid_policy", 422, "a policy file does not parse or validate; the previous set stays in force";
    CsrfRefused = "csrf_refused", 403, "a console change lacked its CSRF token or came from another origin";
    MethodNotAllowed = "method_not_allowed", 405, "the path exists but not with this HTTP method";
    RequestTimeout = "request_timeout", 408, "a request head or body did not arrive in time; the connection was closed";
    PayloadTooLarge = "payload_too_large", 413, "the request body is larger than the server accepts";
    TextTooLong = "text_too_long", 422, "a free-text field is longer than the one cap on free text";
    TooManyScopeItems = "too_many_scope_items", 422, "a request carries more scope entries or rules than the server accepts";
    WeakPassword = "weak_password", 422, "the password is too short, carries control characters, or repeats one character";
    TooManyOpenRequests = "too_many_open_requests", 429, "the requester already has as many open requests as allowed";
    TooManyStreams = "too_many_streams", 429, "this console session already has as many live streams as allowed";
    TooManyConnections = "too_many_connections", 503, "the listener already holds as many connections as allowed";
    InvalidException = "invalid_exception", 422, "an exception's owner, compensating controls, expiry or re-validation interval is out of bounds (docs/exceptions.md)";
    RevalidationOverdue = "revalidation_overdue", 409, "the exception's re-validation is overdue: it ends and cannot be re-validated; request a new one";
    StorageError = "storage_error", 500, "the database failed; see the server log";
    InternalError = "internal_error", 500, "an internal failure; see the server log";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// So tests and clients can write `assert_eq!(err.code(), "wrong_state")`.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_sane_statuses() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(
                c.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
            assert!((400..600).contains(&c.http_status()), "{c}");
            assert!(!c.meaning().is_empty(), "{c}");
        }
    }

    #[test]
    fn the_api_docs_list_every_code_with_its_status() {
        let doc = include_str!("../../../docs/api.md");
        for c in Code::ALL {
            let row = doc
                .lines()
                .find(|l| {
                    l.split('|')
                        .nth(1)
                        .is_some_and(|first| first.contains(&format!("`{}`", c.as_str())))
                })
                .unwrap_or_else(|| panic!("docs/api.md has no row for `{c}`"));
            assert!(
                row.contains(&format!("| {} |", c.http_status())),
                "docs/api.md gives `{c}` another status than {}: {row}",
                c.http_status()
            );
        }
    }
}
