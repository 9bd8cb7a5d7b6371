//! The codec against every way bytes can be wrong, and the sizes the benchmarks quote.

use super::*;
use proptest::prelude::*;

const CLUSTER: ClusterId = ClusterId(0x5155_4f52_4154_4521);

/// A heartbeat as a node of a 5-node cluster sends it a day into its life: node ids
/// 1..=5, incarnations from wall-clock milliseconds, ten heartbeats a second.
fn realistic_heartbeat() -> Message {
    let day_of_heartbeats = 10 * 86_400;
    Message::Heartbeat(Heartbeat {
        from: NodeId(5),
        incarnation: Incarnation(1_795_000_000_123),
        seq: Seq(day_of_heartbeats),
        ack: Some(Ack { incarnation: Incarnation(1_795_000_000_456), seq: Seq(day_of_heartbeats) }),
        terms: Terms {
            lease_us: 900_000,
            drift_ppm: 10_000,
            definition: DefinitionDigest([0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15]),
        },
        digest: Vec::new(),
    })
}

#[test]
fn heartbeat_round_trips() -> Result<(), Box<dyn std::error::Error>> {
    let msg = realistic_heartbeat();
    let bytes = encode(CLUSTER, &msg)?;
    assert_eq!(decode(&bytes, CLUSTER)?, msg);
    Ok(())
}

#[test]
fn heartbeat_for_five_node_cluster_is_under_48_bytes() -> Result<(), Box<dyn std::error::Error>> {
    let bytes = encode(CLUSTER, &realistic_heartbeat())?;
    println!("encoded heartbeat (5-node cluster, one day of sequence numbers): {} bytes", bytes.len());
    assert!(bytes.len() < 48, "heartbeat takes {} bytes", bytes.len());
    Ok(())
}

#[test]
fn rejects_foreign_cluster_before_reading_the_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = encode(ClusterId(7), &realistic_heartbeat())?;
    bytes.truncate(9); // version + cluster id only
    assert_eq!(
        decode(&bytes, CLUSTER),
        Err(DecodeError::ForeignCluster { found: ClusterId(7), expected: CLUSTER })
    );
    Ok(())
}

#[test]
fn rejects_unknown_version() -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = encode(CLUSTER, &realistic_heartbeat())?;
    bytes[0] = 1;
    assert_eq!(decode(&bytes, CLUSTER), Err(DecodeError::UnknownVersion { version: 1 }));
    Ok(())
}

#[test]
fn rejects_every_truncation() -> Result<(), Box<dyn std::error::Error>> {
    let bytes = encode(CLUSTER, &realistic_heartbeat())?;
    for cut in 0..bytes.len() {
        let got = decode(&bytes[..cut], CLUSTER);
        assert_eq!(got, Err(DecodeError::Truncated { len: cut }), "cut at {cut}");
    }
    Ok(())
}

#[test]
fn rejects_trailing_and_oversized_input() -> Result<(), Box<dyn std::error::Error>> {
    let mut bytes = encode(CLUSTER, &realistic_heartbeat())?;
    bytes.push(0);
    assert_eq!(decode(&bytes, CLUSTER), Err(DecodeError::TrailingBytes { extra: 1 }));
    let huge = vec![WIRE_VERSION; DATAGRAM_BYTES_MAX + 1];
    assert_eq!(
        decode(&huge, CLUSTER),
        Err(DecodeError::Oversized { len: DATAGRAM_BYTES_MAX + 1, max: DATAGRAM_BYTES_MAX })
    );
    Ok(())
}

#[test]
fn leave_round_trips() -> Result<(), Box<dyn std::error::Error>> {
    let msg = Message::Leave(Leave { from: NodeId(3), incarnation: Incarnation(1_795_000_000_123) });
    assert_eq!(decode(&encode(CLUSTER, &msg)?, CLUSTER)?, msg);
    Ok(())
}

#[test]
fn refuses_to_encode_a_digest_that_does_not_fit() {
    let digest =
        vec![
            RowVersion { owner: NodeId(u64::MAX), incarnation: Incarnation(u64::MAX), version: u64::MAX };
            100
        ];
    let msg = Message::Heartbeat(Heartbeat {
        from: NodeId(1),
        incarnation: Incarnation(1),
        seq: Seq(1),
        ack: None,
        terms: Terms::default(),
        digest,
    });
    assert!(matches!(encode(CLUSTER, &msg), Err(EncodeError::Oversized { .. })));
}

fn gossip_of(owners: u64, peers: u64) -> Message {
    let entry = |p| RowEntry {
        peer: NodeId(p),
        view: View::Heard,
        incarnation: Some(Incarnation(1_795_000_000_000 + p)),
        changed: 86_400 * 4,
    };
    let row = |o| RowDelta {
        owner: NodeId(o),
        incarnation: Incarnation(1_795_000_000_000 + o),
        version: 86_400 * 4,
        base: None,
        entries: (1..=peers).map(entry).collect(),
    };
    Message::Gossip(Gossip {
        from: NodeId(1),
        incarnation: Incarnation(1_795_000_000_001),
        digest: (1..=owners)
            .map(|o| RowVersion {
                owner: NodeId(o),
                incarnation: Incarnation(1_795_000_000_000 + o),
                version: 86_400 * 4,
            })
            .collect(),
        rows: (1..=owners).map(row).collect(),
    })
}

#[test]
fn gossip_and_fence_messages_round_trip_on_streams() -> Result<(), Box<dyn std::error::Error>> {
    let query = Message::FenceQuery(FenceQuery {
        from: NodeId(3),
        incarnation: Incarnation(9),
        check: 4,
        peer: NodeId(1),
    });
    let answer = Message::FenceAnswer(FenceAnswer {
        from: NodeId(4),
        incarnation: Incarnation(10),
        check: 4,
        peer: NodeId(1),
        down_for_us: Some(1_250_000),
        hold_us: 1_000_000,
    });
    let definition = Message::Definition(Definition {
        from: NodeId(2),
        incarnation: Incarnation(11),
        members: (1..=5).map(|i| (NodeId(i), 1)).collect(),
        tie_breaker: Some(NodeId(1)),
    });
    let roster = Message::Roster(crate::RosterMessage {
        from: NodeId(2),
        incarnation: Incarnation(11),
        version: 4,
        members: (1..=5).map(|i| (NodeId(i), 1, format!("quorate-{i}.quorate:7000"))).collect(),
        tie_breaker: None,
        parent: Some(((1..=4).map(|i| (NodeId(i), 1)).collect(), Some(NodeId(1)))),
        timing: Some("wan".to_owned()),
    });
    for msg in [gossip_of(5, 5), query, answer, definition, roster] {
        assert_eq!(decode_stream(&encode_stream(CLUSTER, &msg)?, CLUSTER)?, msg);
    }
    Ok(())
}

#[test]
fn full_gossip_of_a_large_cluster_needs_a_stream_and_fits_one() -> Result<(), Box<dyn std::error::Error>> {
    let five = encode_stream(CLUSTER, &gossip_of(5, 5))?;
    println!("full gossip (digest + every row) of a 5-node cluster: {} bytes", five.len());
    let big = gossip_of(50, 50);
    assert!(matches!(encode(CLUSTER, &big), Err(EncodeError::Oversized { .. })));
    let bytes = encode_stream(CLUSTER, &big)?;
    println!("full gossip of a 50-node cluster: {} bytes", bytes.len());
    assert!(matches!(decode(&bytes, CLUSTER), Err(DecodeError::Oversized { .. })));
    assert_eq!(decode_stream(&bytes, CLUSTER)?, big);
    Ok(())
}

fn arb_heartbeat() -> impl Strategy<Value = Message> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of((any::<u64>(), any::<u64>())),
        proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>()), 0..20),
        (any::<u32>(), any::<u32>(), any::<[u8; 8]>()),
    )
        .prop_map(|(from, inc, seq, ack, digest, (lease_us, drift_ppm, definition))| {
            Message::Heartbeat(Heartbeat {
                from: NodeId(from),
                incarnation: Incarnation(inc),
                seq: Seq(seq),
                ack: ack.map(|(i, s)| Ack { incarnation: Incarnation(i), seq: Seq(s) }),
                terms: Terms { lease_us, drift_ppm, definition: DefinitionDigest(definition) },
                digest: digest
                    .into_iter()
                    .map(|(owner, i, version)| RowVersion {
                        owner: NodeId(owner),
                        incarnation: Incarnation(i),
                        version,
                    })
                    .collect(),
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let _ = decode(&bytes, CLUSTER);
    }

    #[test]
    fn decode_never_panics_on_valid_header_and_arbitrary_body(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![WIRE_VERSION];
        bytes.extend_from_slice(&CLUSTER.0.to_le_bytes());
        bytes.extend_from_slice(&body);
        let _ = decode(&bytes, CLUSTER);
    }

    #[test]
    fn decode_stream_never_panics_on_valid_header_and_arbitrary_body(
        body in proptest::collection::vec(any::<u8>(), 0..4000)
    ) {
        let mut bytes = vec![WIRE_VERSION];
        bytes.extend_from_slice(&CLUSTER.0.to_le_bytes());
        bytes.extend_from_slice(&body);
        let _ = decode_stream(&bytes, CLUSTER);
    }

    #[test]
    fn flipping_any_byte_of_gossip_never_panics(pos in any::<prop::sample::Index>(), xor in 1u8..) {
        let mut bytes = encode_stream(CLUSTER, &gossip_of(7, 7))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        let _ = decode_stream(&bytes, CLUSTER);
    }

    #[test]
    fn any_heartbeat_round_trips(msg in arb_heartbeat()) {
        let bytes = encode(CLUSTER, &msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode(&bytes, CLUSTER), Ok(msg));
    }

    #[test]
    fn flipping_any_byte_never_panics(msg in arb_heartbeat(), pos in any::<prop::sample::Index>(), xor in 1u8..) {
        let mut bytes = encode(CLUSTER, &msg).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        let _ = decode(&bytes, CLUSTER);
    }
}
