//! `notify-multichannel`: push first, then SMS, then e-mail, each a fallback for the one before;
//! nothing intrusive during the recipient's quiet hours (e-mail goes at once, push and SMS wait
//! for the morning); reminders 48 and 24 hours before the pickup window closes. Settings:
//! `fallback_minutes` (default 15), `urgent_fallback_minutes` (default 5) for expiring and
//! expired parcels, `reminder_hours` (default "48,24").

use lockergrid_plugin_sdk::notification_router::lockergrid::plugin::host;
use lockergrid_plugin_sdk::notification_router::lockergrid::plugin::types::{
    Channel, NotificationEvent, Recipient,
};
use lockergrid_plugin_sdk::notification_router::{Guest, Plan, Step};

struct Multichannel;

/// Minutes in a day.
const DAY: u32 = 24 * 60;

fn setting_u32(key: &str, default: u32) -> u32 {
    host::setting(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Minutes from `now` until quiet hours end, or `None` outside them. Quiet hours may span
/// midnight (22:00 to 07:00).
fn quiet_for(recipient: &Recipient) -> Option<u32> {
    let (start, end) = recipient.quiet_hours?;
    let (start, end, now) = (
        u32::from(start) % DAY,
        u32::from(end) % DAY,
        u32::from(recipient.local_minute) % DAY,
    );
    let inside = if start <= end {
        (start..end).contains(&now)
    } else {
        now >= start || now < end
    };
    inside.then(|| (end + DAY - now) % DAY)
}

fn accepts(recipient: &Recipient, channel: Channel) -> bool {
    recipient.channels.contains(&channel)
}

impl Guest for Multichannel {
    fn route(event: NotificationEvent, recipient: Recipient) -> Plan {
        let urgent = matches!(
            event,
            NotificationEvent::Expiring | NotificationEvent::Expired
        );
        let fallback = if urgent {
            setting_u32("urgent_fallback_minutes", 5)
        } else {
            setting_u32("fallback_minutes", 15)
        };
        let mut steps = Vec::new();
        // The merchant's system hears at once, quiet hours or not.
        if accepts(&recipient, Channel::Webhook) {
            steps.push(Step {
                channel: Channel::Webhook,
                delay_minutes: 0,
            });
        }
        match quiet_for(&recipient) {
            Some(wait) => {
                if accepts(&recipient, Channel::Email) {
                    steps.push(Step {
                        channel: Channel::Email,
                        delay_minutes: 0,
                    });
                }
                for (i, channel) in [Channel::Push, Channel::Sms].into_iter().enumerate() {
                    if accepts(&recipient, channel) {
                        steps.push(Step {
                            channel,
                            delay_minutes: if i == 0 { wait } else { fallback },
                        });
                    }
                }
            }
            None => {
                let mut first = true;
                for channel in [Channel::Push, Channel::Sms, Channel::Email] {
                    if accepts(&recipient, channel) {
                        steps.push(Step {
                            channel,
                            delay_minutes: if first { 0 } else { fallback },
                        });
                        first = false;
                    }
                }
            }
        }
        Plan { steps }
    }

    fn reminder_hours() -> Vec<u32> {
        let configured = host::setting("reminder_hours").unwrap_or_else(|| "48,24".into());
        let mut hours: Vec<u32> = configured
            .trim_matches(|c| c == '"' || c == '[' || c == ']')
            .split(',')
            .filter_map(|h| h.trim().parse().ok())
            .filter(|h| (1..=14 * 24).contains(h))
            .take(4)
            .collect();
        hours.sort_unstable_by(|a, b| b.cmp(a));
        hours.dedup();
        hours
    }
}

lockergrid_plugin_sdk::notification_router::export_notification_router!(Multichannel with_types_in lockergrid_plugin_sdk::notification_router);
