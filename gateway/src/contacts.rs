//! How a parcel's recipient is reached: an e-mail address, a phone number (E.164) and the
//! customer app's endpoint. Addresses are checked when a reservation names them and sealed at
//! once with AES-256-GCM under a data key derived from the node's contact key
//! (`secrets/contact.key`) and a key id, bound to the order and the recipient, so the store, its
//! backups and the edge nodes' mirrors hold ciphertext only; the API shows masked forms. Only
//! the notification sender opens them.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use lockergrid_model::{MaskedContact, NotifyChannel, SealedContact, SealedSecret};
use lockergrid_protocol::{from_hex, to_hex};
use lockergrid_store::Sealer;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The data key new contacts are sealed with; a later id rotates to a new key while sealed
/// contacts keep opening with theirs.
pub const ACTIVE_KEY_ID: u32 = 1;
/// Longest e-mail address (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// Longest app endpoint URL.
const MAX_URL: usize = 2_048;

/// A recipient's addresses in clear, as a reservation names them and the sender uses them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// For `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For `sms`, E.164: `+` and 7 to 15 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// For `push`: the customer app's HTTPS endpoint (plain HTTP on loopback only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
}

/// Never prints an address.
impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Contact({:?})", self.masked())
    }
}

/// Why a sealed contact does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// Not hex or base64, or a nonce of the wrong length.
    #[error("sealed contact is malformed")]
    Malformed,
    /// The tag does not verify: another key, another record, or altered.
    #[error("sealed contact does not open with data key {0}")]
    WrongKey(u32),
}

impl Contact {
    /// Checks each address and that every channel in `channels` has its address.
    pub fn check(&self, channels: &[NotifyChannel]) -> Result<(), String> {
        if let Some(email) = &self.email {
            check_email(email)?;
        }
        if let Some(phone) = &self.phone {
            check_phone(phone)?;
        }
        if let Some(url) = &self.app_url {
            check_app_url(url)?;
        }
        for channel in channels {
            let (present, name, field) = match channel {
                NotifyChannel::Email => (self.email.is_some(), "email", "email"),
                NotifyChannel::Sms => (self.phone.is_some(), "sms", "phone"),
                NotifyChannel::Push => (self.app_url.is_some(), "push", "app_url"),
                // The merchant's own endpoint, from the deployment: no address of the customer.
                NotifyChannel::Webhook => (true, "webhook", ""),
            };
            if !present {
                return Err(format!("channel {name} needs recipient.contact.{field}"));
            }
        }
        Ok(())
    }

    /// The addresses masked.
    pub fn masked(&self) -> MaskedContact {
        MaskedContact {
            email: self.email.as_deref().map(mask_email),
            phone: self.phone.as_deref().map(mask_phone),
            app_url: self.app_url.as_deref().map(origin),
        }
    }
}

fn check_email(email: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "recipient.contact.email is not an e-mail address of at most {MAX_EMAIL} characters"
        ))
    };
    let Some((local, domain)) = email.rsplit_once('@') else {
        return bad();
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let ok = email.len() <= MAX_EMAIL
        && !local.is_empty()
        && local.len() <= 64
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"@\"(),:;<>[\\]".contains(&b))
        && domain.contains('.')
        && domain.split('.').all(label_ok);
    if ok { Ok(()) } else { bad() }
}

fn check_phone(phone: &str) -> Result<(), String> {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err("recipient.contact.phone must be E.164: + and 7 to 15 digits, the first not 0".into())
    }
}

fn check_app_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("recipient.contact.app_url {why}"));
    if url.len() > MAX_URL {
        return bad(&format!("is longer than {MAX_URL} characters"));
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return bad("is not a URL");
    };
    let loopback = parsed.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => bad("must be https (plain http on loopback only)"),
    }
}

fn mask_email(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let keep_head = 3.min(chars.len());
    let keep_tail = 2.min(chars.len().saturating_sub(keep_head));
    let hidden = chars.len() - keep_head - keep_tail;
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[chars.len() - keep_tail..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(hidden))
}

fn origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "***".into(),
        |u| format!("{}/…", u.origin().ascii_serialization()),
    )
}

/// The node's contact key, from which each data key is derived by its id.
#[derive(Clone)]
pub struct ContactKeys {
    master: [u8; 32],
}

impl ContactKeys {
    /// The keys derived from `master`.
    pub fn new(master: [u8; 32]) -> ContactKeys {
        ContactKeys { master }
    }

    /// The data key `key_id` of one kind (`contact`, `message`): each kind and id has its own.
    fn cipher(&self, kind: &str, key_id: u32) -> Aes256Gcm {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.master)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(format!("lockergrid {kind} data key v1/{key_id}").as_bytes());
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        Aes256Gcm::new_from_slice(&key).expect("a 32-byte key")
    }

    /// `plain` sealed under the active key of `kind` with a fresh nonce: (nonce hex, base64).
    fn seal_bytes(&self, kind: &str, plain: &[u8], bound_to: &str) -> (String, String) {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher(kind, ACTIVE_KEY_ID)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: bound_to.as_bytes(),
                },
            )
            .expect("AES-GCM seals any message this size");
        (to_hex(&nonce), STANDARD.encode(sealed))
    }

    fn open_bytes(
        &self,
        kind: &str,
        (key_id, nonce, ciphertext): (u32, &str, &str),
        bound_to: &str,
    ) -> Result<Vec<u8>, ContactError> {
        let nonce: [u8; 12] = from_hex(nonce).ok_or(ContactError::Malformed)?;
        let bytes = STANDARD
            .decode(ciphertext)
            .map_err(|_| ContactError::Malformed)?;
        self.cipher(kind, key_id)
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &bytes,
                    aad: bound_to.as_bytes(),
                },
            )
            .map_err(|_| ContactError::WrongKey(key_id))
    }

    /// Seals `contact` for the record `bound_to` names (the order and the recipient), with the
    /// active data key and a fresh nonce.
    pub fn seal(&self, contact: &Contact, bound_to: &str) -> SealedContact {
        let plain = serde_json::to_vec(contact).expect("a contact serializes");
        let (nonce, ciphertext) = self.seal_bytes("contact", &plain, bound_to);
        SealedContact {
            key_id: ACTIVE_KEY_ID,
            nonce,
            ciphertext,
            masked: contact.masked(),
        }
    }

    /// Opens a contact sealed for `bound_to`.
    pub fn open(&self, sealed: &SealedContact, bound_to: &str) -> Result<Contact, ContactError> {
        let sealed_parts = (
            sealed.key_id,
            sealed.nonce.as_str(),
            sealed.ciphertext.as_str(),
        );
        let plain = self.open_bytes("contact", sealed_parts, bound_to)?;
        serde_json::from_slice(&plain).map_err(|_| ContactError::Malformed)
    }

    /// Opens the code sealed for the message `message_id`.
    pub fn open_secret(
        &self,
        sealed: &SealedSecret,
        message_id: &str,
    ) -> Result<String, ContactError> {
        let parts = (
            sealed.key_id,
            sealed.nonce.as_str(),
            sealed.ciphertext.as_str(),
        );
        let plain = self.open_bytes("message", parts, &secret_binding(message_id))?;
        String::from_utf8(plain).map_err(|_| ContactError::Malformed)
    }
}

/// Codes are sealed for the message that carries them, under a data key of their own.
impl Sealer for ContactKeys {
    fn seal(&self, message_id: &str, secret: &str) -> SealedSecret {
        let (nonce, ciphertext) =
            self.seal_bytes("message", secret.as_bytes(), &secret_binding(message_id));
        SealedSecret {
            key_id: ACTIVE_KEY_ID,
            nonce,
            ciphertext,
        }
    }
}

fn secret_binding(message_id: &str) -> String {
    format!("lockergrid message secret v1\n{message_id}")
}

/// What a sealed contact is bound to: the order and the recipient it was given for.
pub fn binding(order: &str, recipient: &str) -> String {
    format!("lockergrid contact v1\n{order}\n{recipient}")
}

#[cfg(test)]
mod tests;
