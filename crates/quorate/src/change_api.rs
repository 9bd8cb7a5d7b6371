//! The admin endpoint's changing routes: `POST /members` and `POST /config`, what
//! `quorate members` and `quorate config set` send.
//!
//! ```text
//!   peer not loopback ─► 403      Content-Type not JSON ─► 415     body > CHANGE_BYTES_MAX ─► 413
//!   JSON ─► Change ─► Node's driver (propose, persist, run) ─► 200 DefinitionReport
//!                                                       └─► 4xx/5xx ChangeErrorReport
//! ```
//!
//! Changes are accepted only from loopback, even when the endpoint is bound elsewhere: the
//! operator runs the command on a member's host (or through `kubectl exec`). A browser page
//! cannot post a cross-site JSON body without a preflight, which this endpoint never grants.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use quorate_core::ProposeError;
use quorate_proto::{Change, NodeId, Roster, SuccessionError, TieBreaker};
use quorate_transport::MemberAddress;
use serde::{Deserialize, Serialize};

use crate::admin::Source;
use crate::reconfigure::{ChangeRefused, Proposal};
use crate::timing::TIMING_PRESETS;

/// Largest change request body read, in bytes.
pub const CHANGE_BYTES_MAX: usize = 4096;

/// The peer address of the admin connection a request came on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// `POST /members`: one change to the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MembersRequest {
    /// A new member, dialed at `addr` (`IP:PORT` or `HOST:PORT`), with `votes` (default 1).
    Add {
        /// Its node id, as in its certificate.
        id: u64,
        /// Where it listens.
        addr: String,
        /// Its votes; 0 makes an observer.
        #[serde(default = "one")]
        votes: u32,
    },
    /// A member leaves, and with `tie_breaker` the tie-breaker changes in the same step
    /// (how a dead member is removed when removing it alone is unsafe; see
    /// `docs/operations.md`).
    Remove {
        /// The member.
        id: u64,
        /// `none`, `lowest-id` or a voter's id: the tie-breaker from this change on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tie_breaker: Option<String>,
    },
    /// A member's votes change.
    SetVotes {
        /// The member.
        id: u64,
        /// Its new votes.
        votes: u32,
    },
}

fn one() -> u32 {
    1
}

/// `POST /config`: one setting, `key` as the configuration file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRequest {
    /// `quorum.tie_breaker` or `timing.preset`.
    pub key: String,
    /// `none`, `lowest-id` or a node id for the tie-breaker; `lan` or `wan` for the preset.
    pub value: String,
}

/// A definition, as the changing routes answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionReport {
    /// Its version.
    pub version: u64,
    /// Every member: id, votes, address (`None`: not dialed).
    pub members: Vec<MemberReport>,
    /// The resolved tie-breaker; `None` when an exact half never wins.
    pub tie_breaker: Option<u64>,
    /// The timing preset the definition names; `None`: each node's file's timing.
    #[serde(default)]
    pub timing: Option<String>,
}

/// One member of a [`DefinitionReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReport {
    /// Its id.
    pub id: u64,
    /// Its votes.
    pub votes: u32,
    /// Where it is dialed.
    pub address: Option<String>,
}

impl From<&Roster> for DefinitionReport {
    fn from(r: &Roster) -> Self {
        DefinitionReport {
            version: r.version,
            members: r
                .votes
                .members()
                .map(|(id, votes)| MemberReport {
                    id: id.0,
                    votes,
                    address: r.address(id).map(str::to_owned),
                })
                .collect(),
            tie_breaker: r.votes.tie_breaker().map(|t| t.0),
            timing: r.timing.clone(),
        }
    }
}

/// Why a change was refused, as the changing routes answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeErrorReport {
    /// What kind of refusal: `forbidden`, `bad_request`, `unsupported`, `invalid`,
    /// `unsafe`, `pending`, `behind`, `busy`, `stopped`, `persist`, `too_large`.
    pub error: String,
    /// The reason, in words an operator acts on (for `unsafe`: the witness and the safe
    /// sequence of steps).
    pub message: String,
    /// For `pending`: the voters not heard running the current version yet.
    #[serde(default)]
    pub waiting: Vec<u64>,
    /// For `unsafe`: the safe sequence of single changes, in words; empty when none found.
    #[serde(default)]
    pub route: Vec<String>,
}

fn refuse(code: StatusCode, error: &str, message: impl Into<String>) -> Response {
    let report = ChangeErrorReport {
        error: error.to_owned(),
        message: message.into(),
        waiting: vec![],
        route: vec![],
    };
    json(code, &report)
}

fn json<T: Serialize>(code: StatusCode, value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(body) => (code, [(header::CONTENT_TYPE, "application/json")], body + "\n").into_response(),
        Err(e) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the answer: {e}\n")).into_response()
        }
    }
}

/// `POST /members`.
pub(crate) async fn members(
    State(s): State<Source>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: MembersRequest = match read(peer, &headers, body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let (change, address) = match request {
        MembersRequest::Add { id, addr, votes } => {
            let id = NodeId(id);
            match addr.parse::<MemberAddress>() {
                Ok(a) => (Change::AddMember { id, votes }, Some(a)),
                Err(e) => {
                    let why = ChangeRefused::BadAddress { id, addr, reason: e.to_string() };
                    return refused(&why);
                }
            }
        }
        MembersRequest::Remove { id, tie_breaker: None } => (Change::RemoveMember { id: NodeId(id) }, None),
        MembersRequest::Remove { id, tie_breaker: Some(tb) } => match parse_tie_breaker(&tb) {
            Ok(rule) => (Change::RemoveMemberSetTieBreaker { id: NodeId(id), tie_breaker: rule }, None),
            Err(why) => return refuse(StatusCode::BAD_REQUEST, "bad_request", why),
        },
        MembersRequest::SetVotes { id, votes } => (Change::SetVotes { id: NodeId(id), votes }, None),
    };
    apply(&s, change, address).await
}

/// `POST /config`.
pub(crate) async fn config(
    State(s): State<Source>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: ConfigRequest = match read(peer, &headers, body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    match request.key.as_str() {
        "quorum.tie_breaker" => match parse_tie_breaker(&request.value) {
            Ok(rule) => apply(&s, Change::SetTieBreaker(rule), None).await,
            Err(why) => refuse(StatusCode::BAD_REQUEST, "bad_request", why),
        },
        "timing.preset" => match request.value.trim() {
            name if crate::timing::preset(name).is_some() => {
                submit_and_answer(&s, Proposal::Timing(name.to_owned()), None).await
            }
            other => refuse(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("timing.preset = {other:?}: the presets are {}", TIMING_PRESETS.join(", ")),
            ),
        },
        key if key.starts_with("timing.") => refuse(
            StatusCode::BAD_REQUEST,
            "unsupported",
            format!(
                "{key} cannot be set online; timing.preset can (lan or wan), or roll the config file \
                 (change it on every node, restart the nodes one at a time; docs/operations.md, \
                 \"Moving to WAN timing\")"
            ),
        ),
        key => refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{key} cannot be set online; the settings that can: quorum.tie_breaker, timing.preset"),
        ),
    }
}

/// `none`, `lowest-id`, or a voter's id.
pub fn parse_tie_breaker(value: &str) -> Result<TieBreaker, String> {
    match value.trim() {
        "none" => Ok(TieBreaker::None),
        "lowest-id" | "lowest_id" => Ok(TieBreaker::LowestId),
        id => match id.parse::<u64>() {
            Ok(id) if id > 0 => Ok(TieBreaker::Node(NodeId(id))),
            _ => Err(format!("quorum.tie_breaker = {value:?}: write none, lowest-id or a voter's node id")),
        },
    }
}

async fn apply(s: &Source, change: Change, address: Option<MemberAddress>) -> Response {
    submit_and_answer(s, Proposal::Change(change), address).await
}

async fn submit_and_answer(s: &Source, proposal: Proposal, address: Option<MemberAddress>) -> Response {
    match crate::node::submit(&s.changes, proposal, address).await {
        Ok(roster) => json(StatusCode::OK, &DefinitionReport::from(&roster)),
        Err(e) => refused(&e),
    }
}

/// The checks every changing request passes before its body is parsed.
async fn read<T: serde::de::DeserializeOwned>(
    peer: Peer,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, Response> {
    if !peer.0.ip().to_canonical().is_loopback() {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "changes are accepted only from loopback, not from {}: run the command on a member's \
                 host (the admin endpoint may be bound elsewhere for /status and /metrics, never for changes)",
                peer.0.ip()
            ),
        ));
    }
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().starts_with("application/json"));
    if !json_body {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
            "send the change as Content-Type: application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, CHANGE_BYTES_MAX).await.map_err(|_| {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a change request is at most {CHANGE_BYTES_MAX} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_request", format!("not a change request: {e}")))
}

/// The answer to a refused change.
fn refused(e: &ChangeRefused) -> Response {
    let message = e.to_string();
    let mut report = ChangeErrorReport { error: String::new(), message, waiting: vec![], route: vec![] };
    let (code, kind) = match e {
        ChangeRefused::Propose(ProposeError::Unsafe(SuccessionError::Unsafe(why))) => {
            report.route = why.route.iter().flatten().map(ToString::to_string).collect();
            (StatusCode::CONFLICT, "unsafe")
        }
        ChangeRefused::Propose(ProposeError::Unsafe(_)) => (StatusCode::CONFLICT, "unsafe"),
        ChangeRefused::Propose(ProposeError::Pending { waiting, .. }) => {
            report.waiting = waiting.iter().map(|id| id.0).collect();
            (StatusCode::CONFLICT, "pending")
        }
        ChangeRefused::Propose(ProposeError::Behind { .. }) => (StatusCode::CONFLICT, "behind"),
        ChangeRefused::Propose(ProposeError::VotesLent { peers, .. }) => {
            report.waiting = peers.iter().map(|id| id.0).collect();
            (StatusCode::CONFLICT, "lent")
        }
        ChangeRefused::Propose(ProposeError::Change(_))
        | ChangeRefused::RemovesThisNode { .. }
        | ChangeRefused::MissingAddress { .. }
        | ChangeRefused::BadAddress { .. }
        | ChangeRefused::Propose(ProposeError::Timing(_))
        | ChangeRefused::UnknownPreset { .. } => (StatusCode::BAD_REQUEST, "invalid"),
        ChangeRefused::PresetInForce { .. } => (StatusCode::CONFLICT, "in_force"),
        ChangeRefused::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        ChangeRefused::Persist(_) => (StatusCode::INTERNAL_SERVER_ERROR, "persist"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "stopped"),
    };
    report.error = kind.to_owned();
    json(code, &report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_their_defaults_and_unknown_fields_are_refused() {
        let add: Result<MembersRequest, _> =
            serde_json::from_str(r#"{"action":"add","id":6,"addr":"quorate-5.quorate:7001"}"#);
        assert_eq!(
            add.ok(),
            Some(MembersRequest::Add { id: 6, addr: "quorate-5.quorate:7001".into(), votes: 1 })
        );
        let set: Result<MembersRequest, _> =
            serde_json::from_str(r#"{"action":"set-votes","id":2,"votes":2}"#);
        assert_eq!(set.ok(), Some(MembersRequest::SetVotes { id: 2, votes: 2 }));
        let extra: Result<MembersRequest, _> =
            serde_json::from_str(r#"{"action":"remove","id":3,"force":true}"#);
        assert!(extra.is_err());
        let unknown: Result<MembersRequest, _> = serde_json::from_str(r#"{"action":"evict","id":3}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn tie_breakers_are_none_lowest_id_or_a_node() {
        assert_eq!(parse_tie_breaker("none"), Ok(TieBreaker::None));
        assert_eq!(parse_tie_breaker("lowest-id"), Ok(TieBreaker::LowestId));
        assert_eq!(parse_tie_breaker("3"), Ok(TieBreaker::Node(NodeId(3))));
        assert!(parse_tie_breaker("0").is_err());
        assert!(parse_tie_breaker("node-3").is_err());
    }
}
