//! Replay protection inside the writer's transaction: stored first answers of idempotent
//! and legacy-signed writes, and the nonces of v1 signatures.

use redb::ReadableTable;

use super::apply::Tables;
use super::codec;
use super::writer::{Applied, NonceClaim, Outcome, ReplayClaim, Stored};
use super::StoreError;

/// The bytes a replays row keeps of a write's outcome. A refusal is kept as its stable code
/// name (the one table of codes) and detail: a repeat is refused with the same code and
/// words, whatever a later version calls the error.
fn stored_outcome(fingerprint: &[u8; 32], expires_ms: i64, result: &Result<Applied, StoreError>) -> Vec<u8> {
    match result {
        Ok(applied) => codec::outcome(fingerprint, expires_ms, Ok(applied)),
        Err(e) => {
            let e = crate::error::ApiError::from(e.clone());
            codec::outcome(fingerprint, expires_ms, Err((e.code.name(), &e.detail)))
        }
    }
}

/// Expired replay answers deleted per write that stores one.
const REPLAY_PRUNE_BATCH: usize = 16;
/// Expired nonces deleted per claim: pruning keeps pace with claiming, in bounded steps.
const NONCE_PRUNE_BATCH: usize = 16;

impl Tables<'_> {
    /// The stored outcome of an earlier request under the same key, if it has not expired:
    /// replayed when the request is the same, 422 `idempotency_key_reused` when it is not.
    pub(super) fn replay_lookup(
        &mut self,
        claim: &ReplayClaim,
        now_ms: i64,
    ) -> Result<Option<Result<Applied, StoreError>>, redb::StorageError> {
        let Some(row) = self.replays.read()?.get(claim.key.as_str())? else {
            return Ok(None);
        };
        let (fingerprint, expires_ms, stored) =
            codec::decode_replay(row.value()).map_err(|e| redb::StorageError::Corrupted(e.to_string()))?;
        if expires_ms <= now_ms {
            return Ok(None);
        }
        if fingerprint != claim.fingerprint {
            return Ok(Some(Err(StoreError::KeyReused)));
        }
        let replayed = match stored {
            Stored::Outcome(Outcome::Applied(a)) => Applied { replayed: true, ..*a },
            Stored::Outcome(Outcome::Refused { code, detail }) => Applied {
                replayed: true,
                refused: Some(StoreError::Stored { code, detail }),
                ..Applied::default()
            },
            Stored::Answer(answer) => Applied {
                replayed: true,
                answer: Some(answer),
                ..Applied::default()
            },
        };
        Ok(Some(Ok(replayed)))
    }

    /// Stores the outcome beside the write (a refusal too: a repeat must not apply later
    /// what was refused once) and prunes a few expired ones.
    pub(super) fn replay_store(
        &mut self,
        claim: &ReplayClaim,
        result: &Result<Applied, StoreError>,
        now_ms: i64,
    ) -> Result<(), redb::StorageError> {
        let mut expired = Vec::new();
        for row in self
            .replays_by_expiry
            .read()?
            .range(..(now_ms, ""))?
            .take(REPLAY_PRUNE_BATCH)
        {
            let (k, _) = row?;
            let (at, key) = k.value();
            expired.push((at, key.to_string()));
        }
        for (at, key) in &expired {
            self.replays_by_expiry.remove((*at, key.as_str()))?;
            self.replays.remove(key.as_str())?;
        }
        let expires_ms = now_ms.saturating_add(claim.ttl_ms);
        let old = self
            .replays
            .insert(
                claim.key.as_str(),
                stored_outcome(&claim.fingerprint, expires_ms, result).as_slice(),
            )?
            .map(|v| codec::decode_replay(v.value()).map(|(_, at, _)| at));
        if let Some(Ok(old_expiry)) = old {
            self.replays_by_expiry.remove((old_expiry, claim.key.as_str()))?;
        }
        self.replays_by_expiry.insert((expires_ms, claim.key.as_str()), ())?;
        Ok(())
    }

    /// Refuses a nonce seen before (and not yet expired), else remembers it; prunes a few
    /// expired ones on the way so the table stays bounded by the claim rate × TTL.
    pub(super) fn claim_nonce(&mut self, c: &NonceClaim) -> Result<Result<Applied, StoreError>, redb::StorageError> {
        let mut expired = Vec::new();
        for row in self
            .nonces_by_expiry
            .read()?
            .range(..(c.now_ms, "", ""))?
            .take(NONCE_PRUNE_BATCH)
        {
            let (k, _) = row?;
            let (at, p, n) = k.value();
            expired.push((at, p.to_string(), n.to_string()));
        }
        for (at, p, n) in &expired {
            self.nonces_by_expiry.remove((*at, p.as_str(), n.as_str()))?;
            self.nonces.remove((p.as_str(), n.as_str()))?;
        }
        let seen = self
            .nonces
            .read()?
            .get((c.partner.as_str(), c.nonce.as_str()))?
            .map(|v| v.value());
        if seen.is_some_and(|expires| expires > c.now_ms) {
            return Ok(Err(StoreError::NonceReused));
        }
        if let Some(old) = seen {
            self.nonces_by_expiry
                .remove((old, c.partner.as_str(), c.nonce.as_str()))?;
        }
        self.nonces
            .insert((c.partner.as_str(), c.nonce.as_str()), c.expires_ms)?;
        self.nonces_by_expiry
            .insert((c.expires_ms, c.partner.as_str(), c.nonce.as_str()), ())?;
        Ok(Ok(Applied::default()))
    }
}
