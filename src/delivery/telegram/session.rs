//! grammers' `Session` kept in the store, so any worker node can take any account: no session
//! files, no libsql. The state holds the account's authorization keys, so it is stored sealed
//! (ChaCha20-Poly1305 under a pepper-derived key, bound to the account) and written through on
//! every change.

use crate::secrets::{Pepper, Sealer};
use crate::store::{Store, StoreError};
use grammers_session::types::{ChannelState, DcOption, PeerId, PeerInfo, UpdateState, UpdatesState};
use grammers_session::{BoxFuture, Session, SessionData};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored Telegram session cannot be opened (another pepper?) or read")]
    Unreadable,
}

/// What is kept of a session (grammers' `SessionData`, in a serializable shape).
#[derive(Clone, Serialize, Deserialize)]
struct State {
    home_dc: i32,
    dc_options: Vec<DcOption>,
    peers: Vec<PeerInfo>,
    updates: UpdatesState,
}

struct Live {
    home_dc: i32,
    dc_options: HashMap<i32, DcOption>,
    peers: HashMap<PeerId, PeerInfo>,
    updates: UpdatesState,
}

impl Live {
    fn snapshot(&self) -> State {
        State {
            home_dc: self.home_dc,
            dc_options: self.dc_options.values().cloned().collect(),
            peers: self.peers.values().cloned().collect(),
            updates: self.updates.clone(),
        }
    }
}

/// The data centre a seeded session calls home.
const HOME_DC: i32 = 2;

pub struct StoreSession {
    account: String,
    live: Mutex<Live>,
    store: Arc<Store>,
    sealer: Sealer,
}

impl StoreSession {
    /// The account's session as stored, or a fresh one (Telegram's known data centres).
    pub async fn load(store: Arc<Store>, pepper: &Pepper, account: &str) -> Result<Self, SessionError> {
        let sealer = Sealer::new(pepper, "verigram/telegram-session/v1");
        let live = match store.telegram_session(account).await? {
            Some(sealed) => {
                let plain = sealer.open(account.as_bytes(), &sealed).map_err(|_| SessionError::Unreadable)?;
                let state: State = serde_json::from_slice(&plain).map_err(|_| SessionError::Unreadable)?;
                Live {
                    home_dc: state.home_dc,
                    dc_options: state.dc_options.into_iter().map(|d| (d.id, d)).collect(),
                    peers: state.peers.into_iter().map(|p| (p.id(), p)).collect(),
                    updates: state.updates,
                }
            }
            None => {
                let fresh = SessionData::default();
                Live {
                    home_dc: fresh.home_dc,
                    dc_options: fresh.dc_options,
                    peers: fresh.peer_infos,
                    updates: fresh.updates_state,
                }
            }
        };
        Ok(Self { account: account.to_owned(), live: Mutex::new(live), store, sealer })
    }

    /// Seeds the session with a data centre and the authorization key it shares with it, as
    /// a signed-in session holds them: for accounts of a local development peer
    /// (`verigram-dev-telegram`), which makes no key exchange.
    pub async fn seed(
        store: Arc<Store>,
        pepper: &Pepper,
        account: &str,
        addr: std::net::SocketAddr,
        auth_key: [u8; 256],
    ) -> Result<(), SessionError> {
        let session = Self::load(store, pepper, account).await?;
        let (ipv4, ipv6) = match addr {
            std::net::SocketAddr::V4(v4) => (v4, SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0)),
            std::net::SocketAddr::V6(v6) => (SocketAddrV4::new(Ipv4Addr::LOCALHOST, v6.port()), v6),
        };
        session.set_dc_option(&DcOption { id: HOME_DC, ipv4, ipv6, auth_key: Some(auth_key) }).await?;
        session.set_home_dc_id(HOME_DC).await
    }

    /// Writes the whole state through to the store, sealed.
    async fn persist(&self) -> Result<(), SessionError> {
        let state = self.live.lock().snapshot();
        let plain = serde_json::to_vec(&state).map_err(|_| SessionError::Unreadable)?;
        let sealed = self.sealer.seal(self.account.as_bytes(), &plain);
        self.store.put_telegram_session(&self.account, &sealed).await?;
        Ok(())
    }

    fn change(&self, edit: impl FnOnce(&mut Live)) -> BoxFuture<'_, Result<(), SessionError>> {
        edit(&mut self.live.lock());
        Box::pin(self.persist())
    }
}

impl Session for StoreSession {
    type Error = SessionError;

    fn home_dc_id(&self) -> Result<i32, SessionError> {
        Ok(self.live.lock().home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), SessionError>> {
        self.change(|l| l.home_dc = dc_id)
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, SessionError> {
        Ok(self.live.lock().dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), SessionError>> {
        let dc_option = dc_option.clone();
        self.change(move |l| {
            l.dc_options.insert(dc_option.id, dc_option);
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, SessionError>> {
        let found = self.live.lock().peers.get(&peer).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), SessionError>> {
        self.change(move |l| {
            l.peers.entry(peer.id()).or_insert_with(|| peer.clone()).extend_info(&peer);
        })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, SessionError>> {
        let state = self.live.lock().updates.clone();
        Box::pin(async move { Ok(state) })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), SessionError>> {
        self.change(move |l| match update {
            UpdateState::All(all) => l.updates = all,
            UpdateState::Primary { pts, date, seq } => {
                l.updates.pts = pts;
                l.updates.date = date;
                l.updates.seq = seq;
            }
            UpdateState::Secondary { qts } => l.updates.qts = qts,
            UpdateState::Channel { id, pts } => {
                l.updates.channels.retain(|c| c.id != id);
                l.updates.channels.push(ChannelState { id, pts });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_session_survives_a_reload_and_is_stored_sealed() {
        let store = Arc::new(Store::from(MemoryStore::new(10)));
        let pepper = Pepper::new(&[9; 32]).unwrap();
        let session = StoreSession::load(Arc::clone(&store), &pepper, "acct").await.unwrap();
        let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4430);
        let key = [7u8; 256];
        session
            .set_dc_option(&DcOption {
                id: 2,
                ipv4: v4,
                ipv6: SocketAddrV6::new(v4.ip().to_ipv6_mapped(), 4430, 0, 0),
                auth_key: Some(key),
            })
            .await
            .unwrap();
        session.set_home_dc_id(2).await.unwrap();
        session.set_update_state(UpdateState::Primary { pts: 10, date: 20, seq: 3 }).await.unwrap();

        let reloaded = StoreSession::load(Arc::clone(&store), &pepper, "acct").await.unwrap();
        assert_eq!(reloaded.home_dc_id().unwrap(), 2);
        assert_eq!(reloaded.dc_option(2).unwrap().unwrap().auth_key, Some(key));
        assert_eq!(reloaded.updates_state().await.unwrap().pts, 10);

        let sealed = store.telegram_session("acct").await.unwrap().unwrap();
        assert!(!sealed.contains("4430") && !sealed.contains("auth_key"), "stored sealed");
        let other = Pepper::new(&[8; 32]).unwrap();
        assert!(matches!(StoreSession::load(Arc::clone(&store), &other, "acct").await, Err(SessionError::Unreadable)));
        let fresh = StoreSession::load(store, &pepper, "other").await.unwrap();
        assert!(fresh.dc_option(2).unwrap().is_some_and(|d| d.auth_key.is_none()), "Telegram's known data centres");
    }
}
