//! Which node owns a key: the key's hash slot (CRC16/XMODEM of the key, or of
//! its `{hash tag}`, mod 16384) and the cluster's slot map (`CLUSTER SLOTS`).

use redis::Value;

/// Slots of a Redis Cluster.
pub(crate) const SLOTS: u16 = 16384;

/// The hash slot of `key`, as `CLUSTER KEYSLOT` computes it: only the part
/// between the first `{` and the next `}` counts, when it is not empty.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16_xmodem(hashed) % SLOTS
}

fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The primary of every slot range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SlotMap {
    /// `(first, last, host, port)`, sorted by `first`.
    ranges: Vec<(u16, u16, String, u16)>,
}

impl SlotMap {
    /// From a `CLUSTER SLOTS` reply: `[[first, last, [host, port, id, …],
    /// replica…], …]`.
    pub(crate) fn from_reply(reply: &Value) -> Result<SlotMap, String> {
        let Value::Array(entries) = reply else {
            return Err(format!("CLUSTER SLOTS gave {reply:?}"));
        };
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(fields) = entry else {
                return Err(format!("CLUSTER SLOTS entry {entry:?}"));
            };
            let int = |v: Option<&Value>| match v {
                Some(Value::Int(n)) => u16::try_from(*n).ok(),
                _ => None,
            };
            let (Some(first), Some(last)) = (int(fields.first()), int(fields.get(1))) else {
                return Err(format!("CLUSTER SLOTS entry without a range: {fields:?}"));
            };
            let Some(Value::Array(primary)) = fields.get(2) else {
                return Err(format!("CLUSTER SLOTS range {first}-{last} has no primary"));
            };
            let host = match primary.first() {
                Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Value::SimpleString(s)) => s.clone(),
                other => return Err(format!("CLUSTER SLOTS primary host {other:?}")),
            };
            let Some(port) = int(primary.get(1)) else {
                return Err(format!("CLUSTER SLOTS primary port {:?}", primary.get(1)));
            };
            ranges.push((first, last, host, port));
        }
        ranges.sort();
        Ok(SlotMap { ranges })
    }

    /// The primary serving `slot`, if the map covers it.
    pub(crate) fn primary(&self, slot: u16) -> Option<(&str, u16)> {
        let i = self
            .ranges
            .partition_point(|r| r.0 <= slot)
            .checked_sub(1)?;
        let (first, last, host, port) = &self.ranges[i];
        (*first <= slot && slot <= *last).then_some((host.as_str(), *port))
    }

    /// Every primary, once each.
    pub(crate) fn primaries(&self) -> Vec<(String, u16)> {
        let mut all: Vec<_> = self.ranges.iter().map(|r| (r.2.clone(), r.3)).collect();
        all.sort();
        all.dedup();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_spec() {
        // The specification's example, and hash tags.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
    }

    #[test]
    fn the_map_finds_each_slot_primary() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(5461), Value::Int(10922), node("b", 7001)]),
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("a", 7000),
                node("r", 7003),
            ]),
            Value::Array(vec![Value::Int(10923), Value::Int(16383), node("c", 7002)]),
        ]);
        let map = SlotMap::from_reply(&reply).unwrap();
        assert_eq!(map.primary(0), Some(("a", 7000)));
        assert_eq!(map.primary(5461), Some(("b", 7001)));
        assert_eq!(map.primary(16383), Some(("c", 7002)));
        assert_eq!(map.primaries().len(), 3);
        assert!(SlotMap::default().primary(1).is_none());
        assert!(SlotMap::from_reply(&Value::Int(1)).is_err());
    }
}
