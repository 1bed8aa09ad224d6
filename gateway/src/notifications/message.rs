//! What a message says, per channel: the e-mail's subject, text and HTML (with the code as a QR
//! image the locker's reader accepts), the SMS text, and the JSON the customer app and
//! integrators receive. Only the e-mail, SMS and customer-app forms ever hold the code.

use crate::config::StationInfo;
use lockergrid_model::{About, NotificationEvent};
use lockergrid_protocol::Timestamp;
use serde_json::{Value, json};
use std::time::{Duration, UNIX_EPOCH};

/// One message, rendered from its outbox entry with its code opened.
#[derive(Clone)]
pub struct Message {
    /// The outbox entry's id.
    pub id: String,
    /// What happened.
    pub event: NotificationEvent,
    /// The parcel or return.
    pub about: About,
    /// The station, as customers know it.
    pub station: StationInfo,
    /// The code, for the customer's eyes only.
    pub code: Option<String>,
    /// When the code or the pickup window ends.
    pub expires_at: Option<Timestamp>,
    /// Local time at the station, minutes east of UTC.
    pub utc_offset_minutes: i32,
}

/// Never prints the code.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("about", &self.about)
            .finish_non_exhaustive()
    }
}

/// The name integrators and the customer app know an event by.
pub fn event_type(event: NotificationEvent) -> &'static str {
    match event {
        NotificationEvent::ParcelStored => "parcel.stored",
        NotificationEvent::Reminder => "parcel.reminder",
        NotificationEvent::Expiring => "parcel.expiring",
        NotificationEvent::Expired => "parcel.expired",
        NotificationEvent::ReturnCode => "return.authorized",
        NotificationEvent::ReturnReceived => "return.dropped_off",
        NotificationEvent::PickedUp => "parcel.picked_up",
        NotificationEvent::ReturnedToSender => "parcel.returned_to_sender",
        NotificationEvent::ReturnCollected => "return.collected",
        NotificationEvent::ReservationMoved => "reservation.moved",
        NotificationEvent::ReservationCancelled => "reservation.cancelled",
    }
}

impl Message {
    /// `at` in the station's local time, `2026-12-04 18:00 (UTC+01:00)`.
    fn local(&self, at: Timestamp) -> String {
        let shifted = i64::try_from(at.millis()).unwrap_or(i64::MAX)
            + i64::from(self.utc_offset_minutes) * 60_000;
        let when = UNIX_EPOCH + Duration::from_millis(u64::try_from(shifted).unwrap_or(0));
        let text = humantime::format_rfc3339_seconds(when).to_string();
        let (h, m) = (
            self.utc_offset_minutes.abs() / 60,
            self.utc_offset_minutes.abs() % 60,
        );
        let sign = if self.utc_offset_minutes < 0 {
            '-'
        } else {
            '+'
        };
        format!("{} {} (UTC{sign}{h:02}:{m:02})", &text[..10], &text[11..16])
    }

    /// The e-mail's subject.
    pub fn subject(&self) -> String {
        let name = &self.station.name;
        match self.event {
            NotificationEvent::ParcelStored => format!("Your parcel is ready at {name}"),
            NotificationEvent::Reminder => format!("Reminder: your parcel waits at {name}"),
            NotificationEvent::Expiring => format!("Last chance: collect your parcel at {name}"),
            NotificationEvent::Expired => format!("Your parcel at {name} goes back to the sender"),
            NotificationEvent::ReturnCode => format!("Your drop-off code for {name}"),
            NotificationEvent::ReturnReceived => format!("Your return is in the locker at {name}"),
            NotificationEvent::PickedUp => format!("Your parcel was collected at {name}"),
            NotificationEvent::ReturnedToSender => {
                format!("Your parcel from {name} is on its way back to the sender")
            }
            NotificationEvent::ReturnCollected => "Your return is on its way".into(),
            NotificationEvent::ReservationMoved => {
                format!("Your parcel will be delivered to {name} instead")
            }
            NotificationEvent::ReservationCancelled => format!(
                "The locker at {name} has closed and none nearby has room: the shop will arrange your delivery"
            ),
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.subject() + "."];
        if let Some(code) = &self.code {
            let what = match self.about {
                About::Parcel(_) => "pickup",
                About::Return(_) => "drop-off",
            };
            lines.push(format!(
                "Your {what} code: {code} (type it on the keypad, or hold the QR code to the reader)."
            ));
        }
        if matches!(
            self.event,
            NotificationEvent::Reminder | NotificationEvent::Expiring
        ) {
            lines.push(
                "Use the code from your first message, or ask the shop for a new one.".into(),
            );
        }
        if let Some(expires) = self.expires_at
            && matches!(
                self.event,
                NotificationEvent::ParcelStored
                    | NotificationEvent::Reminder
                    | NotificationEvent::Expiring
                    | NotificationEvent::ReturnCode
            )
        {
            lines.push(format!("Valid until {}.", self.local(expires)));
        }
        lines.push(format!("Station: {}", self.station.name));
        if let Some(address) = &self.station.address {
            lines.push(format!("Address: {address}"));
        }
        if let Some(hours) = &self.station.opening_hours {
            lines.push(format!("Opening hours: {hours}"));
        }
        lines
    }

    /// The e-mail's plain-text body.
    pub fn text(&self) -> String {
        self.lines().join("\n") + "\n"
    }

    /// The e-mail's HTML body; `qr_cid` names the inline QR image, if there is one.
    pub fn html(&self, qr_cid: Option<&str>) -> String {
        let mut body = String::from("<!doctype html><html><body>");
        for line in self.lines() {
            body.push_str("<p>");
            body.push_str(&escape(&line));
            body.push_str("</p>");
        }
        if let Some(cid) = qr_cid {
            body.push_str(&format!(
                "<p><img src=\"cid:{cid}\" alt=\"QR code of your code\" width=\"240\" height=\"240\"></p>"
            ));
        }
        body.push_str("</body></html>");
        body
    }

    /// The SMS text.
    pub fn sms(&self) -> String {
        let mut text = self.subject();
        if let Some(code) = &self.code {
            text.push_str(&format!(". Code {code}"));
        }
        if let Some(expires) = self.expires_at
            && self.code.is_some()
        {
            text.push_str(&format!(", valid until {}", self.local(expires)));
        }
        text.push('.');
        text
    }

    /// What the customer app receives: the event, the station and the code.
    pub fn app_payload(&self, now: Timestamp) -> Value {
        let mut data = self.integrator_data();
        if let Some(code) = &self.code {
            data["code"] = json!(code);
        }
        json!({ "type": event_type(self.event), "timestamp": rfc3339(now), "data": data })
    }

    /// What an integrator receives: never the code.
    pub fn integrator_data(&self) -> Value {
        let (kind, id) = match &self.about {
            About::Parcel(id) => ("parcel_id", id.as_str()),
            About::Return(id) => ("return_id", id.as_str()),
        };
        json!({
            kind: id,
            "message_id": self.id,
            "station": {
                "name": self.station.name,
                "address": self.station.address,
                "opening_hours": self.station.opening_hours,
            },
            "expires_at": self.expires_at.map(rfc3339),
        })
    }

    /// The code as a QR image (PNG, 8 pixels a module, with the quiet zone).
    pub fn qr_png(&self) -> Option<Vec<u8>> {
        qr_png(self.code.as_deref()?)
    }
}

/// RFC 3339 in UTC.
pub fn rfc3339(at: Timestamp) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(at.millis())).to_string()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `text` as a QR code in a greyscale PNG.
pub fn qr_png(text: &str) -> Option<Vec<u8>> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (i % width + QUIET, i / width + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
        }
    }
    let mut png = Vec::new();
    let side32 = u32::try_from(side).ok()?;
    let mut encoder = png::Encoder::new(&mut png, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&pixels).ok()?;
    writer.finish().ok()?;
    Some(png)
}
