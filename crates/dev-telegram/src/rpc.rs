//! The Telegram methods the peer answers, decoded with grammers-tl-types' function
//! deserializers, and their answers.

use super::auth::QrLogin;
use super::world::{now_secs, Fault, World};
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use std::net::SocketAddr;

/// What to do with one call.
#[derive(Debug)]
pub enum Answer {
    /// The result object (serialized, with its constructor id).
    Result(Vec<u8>),
    Error {
        code: i32,
        message: String,
    },
    /// Close the connection.
    Drop,
    /// Close the connection without the answer, after carrying the call out.
    DropAfter,
}

/// An answer and how long to hold it back; `read_by` names a user who reads on their own
/// after the peer's `reads_after` (set when a message went out).
pub struct Decision {
    pub answer: Answer,
    pub delay: Option<std::time::Duration>,
    pub sent_to: Option<String>,
}

/// The rest of a buffer, whatever it holds: the inner query of `initConnection`.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor) -> tl::deserialize::Result<Self> {
        let mut rest = Vec::new();
        buf.read_to_end(&mut rest)?;
        Ok(Rest(rest))
    }
}

const INVOKE_WITH_LAYER: u32 =
    <tl::functions::InvokeWithLayer<tl::functions::help::GetConfig> as Identifiable>::CONSTRUCTOR_ID;
const INIT_CONNECTION: u32 =
    <tl::functions::InitConnection<tl::functions::help::GetConfig> as Identifiable>::CONSTRUCTOR_ID;

/// Unwraps `invokeWithLayer(initConnection(query))` down to the query.
fn unwrap_query(body: &[u8]) -> Result<Vec<u8>, tl::deserialize::Error> {
    let mut body = body.to_vec();
    loop {
        match super::wire::constructor(&body) {
            Some(INVOKE_WITH_LAYER) => body = body.get(8..).unwrap_or_default().to_vec(),
            Some(INIT_CONNECTION) => {
                let init = tl::functions::InitConnection::<Rest>::deserialize(&mut Cursor::from_slice(&body[4..]))?;
                body = init.query.0;
            }
            _ => return Ok(body),
        }
    }
}

fn parse<T: Deserializable>(body: &[u8]) -> Result<T, Answer> {
    T::deserialize(&mut Cursor::from_slice(body.get(4..).unwrap_or_default()))
        .map_err(|_| Answer::Error { code: 400, message: "INPUT_REQUEST_INVALID".into() })
}

fn error(code: i32, message: &str) -> Answer {
    Answer::Error { code, message: message.to_owned() }
}

/// What a key that is not signed in may call: the configuration and signing in.
const SIGNED_OUT_METHODS: [u32; 6] = [
    tl::functions::auth::ExportLoginToken::CONSTRUCTOR_ID,
    tl::functions::help::GetConfig::CONSTRUCTOR_ID,
    tl::functions::auth::SendCode::CONSTRUCTOR_ID,
    tl::functions::auth::SignIn::CONSTRUCTOR_ID,
    tl::functions::auth::CheckPassword::CONSTRUCTOR_ID,
    tl::functions::account::GetPassword::CONSTRUCTOR_ID,
];

/// Answers one call of `account` (the peer listens at `addr`).
pub fn call(world: &mut World, account: &str, addr: SocketAddr, body: &[u8]) -> Decision {
    let mut decision = Decision { answer: Answer::Drop, delay: None, sent_to: None };
    let query = match unwrap_query(body) {
        Ok(query) => query,
        Err(_) => {
            decision.answer = error(400, "INPUT_REQUEST_INVALID");
            return decision;
        }
    };
    let id = super::wire::constructor(&query).unwrap_or(0);
    let method = tl::name_for_id(id);
    world.record_call(account, method);
    if world.signed_out(account) && !SIGNED_OUT_METHODS.contains(&id) {
        decision.answer = error(401, "AUTH_KEY_UNREGISTERED");
        return decision;
    }
    match world.fault_for(account, method) {
        Some(Fault::Error { code, message }) => {
            decision.answer = Answer::Error { code, message };
            return decision;
        }
        Some(Fault::Drop) => return decision,
        Some(Fault::Delay(d)) => decision.delay = Some(d),
        Some(Fault::DropAfter) => {
            let _ = answer(world, account, addr, id, &query, &mut decision.sent_to);
            decision.answer = Answer::DropAfter;
            return decision;
        }
        None => {}
    }
    decision.answer = match answer(world, account, addr, id, &query, &mut decision.sent_to) {
        Ok(result) => Answer::Result(result),
        Err(answer) => answer,
    };
    decision
}

fn answer(
    world: &mut World,
    account: &str,
    addr: SocketAddr,
    id: u32,
    query: &[u8],
    sent_to: &mut Option<String>,
) -> Result<Vec<u8>, Answer> {
    use tl::functions::{account as acct, auth, contacts, help, messages, updates, users};
    let same_phone = |phone: &str| phone.chars().filter(char::is_ascii_digit).eq(account.chars());
    Ok(match id {
        auth::SendCode::CONSTRUCTOR_ID => {
            let q: auth::SendCode = parse(query)?;
            if !same_phone(&q.phone_number) {
                return Err(error(400, "PHONE_NUMBER_INVALID"));
            }
            world.login(account).send_code().to_bytes()
        }
        auth::SignIn::CONSTRUCTOR_ID => {
            let q: auth::SignIn = parse(query)?;
            if !same_phone(&q.phone_number) {
                return Err(error(400, "PHONE_NUMBER_INVALID"));
            }
            world.login(account).sign_in(&q.phone_code_hash, q.phone_code.as_deref()).map_err(|(c, m)| error(c, m))?;
            authorization(world, account).to_bytes()
        }
        acct::GetPassword::CONSTRUCTOR_ID => world.login(account).get_password().to_bytes(),
        auth::ExportLoginToken::CONSTRUCTOR_ID => {
            match world.login(account).export_login_token(now_secs()).map_err(|(c, m)| error(c, m))? {
                QrLogin::Token { token, expires } => {
                    tl::enums::auth::LoginToken::Token(tl::types::auth::LoginToken { expires, token }).to_bytes()
                }
                QrLogin::Success => {
                    let authorization = authorization(world, account);
                    tl::enums::auth::LoginToken::Success(tl::types::auth::LoginTokenSuccess { authorization })
                        .to_bytes()
                }
            }
        }
        auth::CheckPassword::CONSTRUCTOR_ID => {
            let q: auth::CheckPassword = parse(query)?;
            world.login(account).check_password(&q.password).map_err(|(c, m)| error(c, m))?;
            authorization(world, account).to_bytes()
        }
        help::GetConfig::CONSTRUCTOR_ID => config(addr).to_bytes(),
        updates::GetState::CONSTRUCTOR_ID => world.state(account).to_bytes(),
        updates::GetDifference::CONSTRUCTOR_ID => {
            let q: updates::GetDifference = parse(query)?;
            world.difference(account, q.pts).to_bytes()
        }
        contacts::ImportContacts::CONSTRUCTOR_ID => {
            let q: contacts::ImportContacts = parse(query)?;
            let mut imported = Vec::new();
            let mut users = Vec::new();
            for tl::enums::InputContact::InputPhoneContact(c) in q.contacts {
                if let Some(user) = world.lookup(&c.phone) {
                    imported.push(tl::enums::ImportedContact::Contact(tl::types::ImportedContact {
                        user_id: user.id(),
                        client_id: c.client_id,
                    }));
                    users.push(world.tl_user(account, &user));
                }
            }
            tl::enums::contacts::ImportedContacts::Contacts(tl::types::contacts::ImportedContacts {
                imported,
                popular_invites: Vec::new(),
                retry_contacts: Vec::new(),
                users,
            })
            .to_bytes()
        }
        contacts::ResolvePhone::CONSTRUCTOR_ID => {
            let q: contacts::ResolvePhone = parse(query)?;
            let user = world.lookup(&q.phone).ok_or_else(|| error(400, "PHONE_NOT_OCCUPIED"))?;
            tl::enums::contacts::ResolvedPeer::Peer(tl::types::contacts::ResolvedPeer {
                peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: user.id() }),
                chats: Vec::new(),
                users: vec![world.tl_user(account, &user)],
            })
            .to_bytes()
        }
        contacts::DeleteContacts::CONSTRUCTOR_ID => no_updates().to_bytes(),
        users::GetUsers::CONSTRUCTOR_ID => {
            let q: users::GetUsers = parse(query)?;
            world.users(account, &q.id).to_bytes()
        }
        messages::SendMessage::CONSTRUCTOR_ID => {
            let q: messages::SendMessage = parse(query)?;
            let tl::enums::InputPeer::User(peer) = q.peer else {
                return Err(error(400, "PEER_ID_INVALID"));
            };
            let sent = world
                .send(account, peer.user_id, peer.access_hash, &q.message, q.random_id)
                .map_err(|(c, m)| error(c, m))?;
            *sent_to = Some(peer.user_id.to_string());
            tl::enums::Updates::UpdateShortSentMessage(sent).to_bytes()
        }
        messages::GetHistory::CONSTRUCTOR_ID => {
            let q: messages::GetHistory = parse(query)?;
            let tl::enums::InputPeer::User(peer) = q.peer else {
                return Err(error(400, "PEER_ID_INVALID"));
            };
            let limit = usize::try_from(q.limit).unwrap_or(0);
            let messages =
                world.history(account, peer.user_id, peer.access_hash, limit).map_err(|(c, m)| error(c, m))?;
            let user = world.lookup(&peer.user_id.to_string());
            let users = user.map(|u| vec![world.tl_user(account, &u)]).unwrap_or_default();
            tl::enums::messages::Messages::Messages(tl::types::messages::Messages {
                messages,
                topics: Vec::new(),
                chats: Vec::new(),
                users,
            })
            .to_bytes()
        }
        messages::DeleteMessages::CONSTRUCTOR_ID => {
            let q: messages::DeleteMessages = parse(query)?;
            let (pts, pts_count) = world.delete(account, &q.id);
            tl::enums::messages::AffectedMessages::Messages(tl::types::messages::AffectedMessages { pts, pts_count })
                .to_bytes()
        }
        _ => return Err(error(400, "INPUT_METHOD_INVALID")),
    })
}

/// A signed-in account's `auth.authorization`.
fn authorization(world: &World, account: &str) -> tl::enums::auth::Authorization {
    let user = world.users(account, &[tl::enums::InputUser::UserSelf]).pop();
    let user = user.unwrap_or(tl::enums::User::Empty(tl::types::UserEmpty { id: 0 }));
    tl::enums::auth::Authorization::Authorization(tl::types::auth::Authorization {
        setup_password_required: false,
        otherwise_relogin_days: None,
        tmp_sessions: None,
        future_auth_token: None,
        user,
    })
}

fn no_updates() -> tl::enums::Updates {
    tl::enums::Updates::Updates(tl::types::Updates {
        updates: Vec::new(),
        users: Vec::new(),
        chats: Vec::new(),
        date: now_secs(),
        seq: 0,
    })
}

/// `help.getConfig`: the peer is data centre 2, the home the client's session was seeded with.
fn config(addr: SocketAddr) -> tl::enums::Config {
    let now = now_secs();
    tl::enums::Config::Config(tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date: now,
        expires: now + 3600,
        test_mode: true,
        this_dc: 2,
        dc_options: vec![tl::enums::DcOption::Option(tl::types::DcOption {
            ipv6: addr.is_ipv6(),
            media_only: false,
            tcpo_only: false,
            cdn: false,
            r#static: true,
            this_port_only: false,
            id: 2,
            ip_address: addr.ip().to_string(),
            port: i32::from(addr.port()),
            secret: None,
        })],
        dc_txt_domain_name: String::new(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".into(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: 2,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    })
}

/// An `rpc_error` object.
pub fn rpc_error(code: i32, message: &str) -> Vec<u8> {
    tl::enums::RpcError::Error(tl::types::RpcError { error_code: code, error_message: message.to_owned() }).to_bytes()
}

/// A `pong` for a `ping` (or `ping_delay_disconnect`) message.
pub fn pong(msg_id: i64, body: &[u8]) -> Option<Vec<u8>> {
    let id = super::wire::constructor(body)?;
    let ping_id = if id == tl::functions::Ping::CONSTRUCTOR_ID {
        parse::<tl::functions::Ping>(body).ok()?.ping_id
    } else if id == tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID {
        parse::<tl::functions::PingDelayDisconnect>(body).ok()?.ping_id
    } else {
        return None;
    };
    Some(tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id }).to_bytes())
}

/// `get_future_salts`: how many salts are asked for.
pub fn get_future_salts(body: &[u8]) -> Option<i32> {
    (super::wire::constructor(body)? == tl::functions::GetFutureSalts::CONSTRUCTOR_ID)
        .then(|| parse::<tl::functions::GetFutureSalts>(body).ok().map(|q| q.num))?
}

/// `msgs_ack` for content-related client messages.
pub fn ack(msg_ids: Vec<i64>) -> Vec<u8> {
    tl::enums::MsgsAck::Ack(tl::types::MsgsAck { msg_ids }).to_bytes()
}

pub fn is_ack(body: &[u8]) -> bool {
    super::wire::constructor(body) == Some(tl::types::MsgsAck::CONSTRUCTOR_ID)
}
