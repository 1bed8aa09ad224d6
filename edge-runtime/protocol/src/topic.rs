//! MQTT topics of the device plane (DESIGN.md §6): one locker, one id, four channels under
//! `lockers/{id}/`; edge nodes use the same channels under `edges/{id}/`.

use std::fmt;

/// Who is at the other end of a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Root {
    /// A locker controller: `lockers/{id}/…`.
    Locker,
    /// An edge node: `edges/{id}/…`.
    Edge,
}

impl Root {
    /// The first topic level.
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Locker => "lockers",
            Root::Edge => "edges",
        }
    }
}

/// One of a device's four channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Device → node: door, keypad and tamper events; must not be lost.
    Events,
    /// Device → node: heartbeats and sensor readings; the newest one matters.
    Telemetry,
    /// Node → device: signed commands.
    Commands,
    /// Device → node: acknowledgements of commands, by command id.
    Acks,
    /// Device → node: requests for bytes of a firmware image it was offered.
    Firmware,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 5] = [
        Channel::Events,
        Channel::Telemetry,
        Channel::Commands,
        Channel::Acks,
        Channel::Firmware,
    ];

    /// The last topic level.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Events => "events",
            Channel::Telemetry => "telemetry",
            Channel::Commands => "commands",
            Channel::Acks => "acks",
            Channel::Firmware => "firmware",
        }
    }

    /// Whether the device publishes on this channel (the node publishes on the others).
    pub fn from_device(self) -> bool {
        self != Channel::Commands
    }
}

/// A device topic: `{root}/{id}/{channel}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Topic<'a> {
    /// Locker or edge node.
    pub root: Root,
    /// The device's id.
    pub id: &'a str,
    /// Which channel.
    pub channel: Channel,
}

impl<'a> Topic<'a> {
    /// A locker's topic.
    pub fn locker(id: &'a str, channel: Channel) -> Topic<'a> {
        Topic {
            root: Root::Locker,
            id,
            channel,
        }
    }

    /// Parses a concrete topic name (no wildcards); anything else is `None`.
    pub fn parse(name: &'a str) -> Option<Topic<'a>> {
        let mut levels = name.split('/');
        let root = match levels.next()? {
            "lockers" => Root::Locker,
            "edges" => Root::Edge,
            _ => return None,
        };
        let id = levels
            .next()
            .filter(|id| !id.is_empty() && !id.contains(['+', '#']))?;
        let channel = match levels.next()? {
            "events" => Channel::Events,
            "telemetry" => Channel::Telemetry,
            "commands" => Channel::Commands,
            "acks" => Channel::Acks,
            "firmware" => Channel::Firmware,
            _ => return None,
        };
        levels
            .next()
            .is_none()
            .then_some(Topic { root, id, channel })
    }

    /// The filter matching this channel of every device under `root`: `{root}/+/{channel}`.
    pub fn every(root: Root, channel: Channel) -> String {
        format!("{}/+/{}", root.as_str(), channel.as_str())
    }
}

impl fmt::Display for Topic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.root.as_str(),
            self.id,
            self.channel.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_reject_everything_else() {
        for channel in Channel::ALL {
            let name = Topic::locker("ams-zuid", channel).to_string();
            assert_eq!(
                Topic::parse(&name),
                Some(Topic::locker("ams-zuid", channel))
            );
        }
        for bad in [
            "",
            "lockers",
            "lockers/ams-zuid",
            "lockers//events",
            "lockers/+/events",
            "lockers/#",
            "lockers/ams-zuid/events/extra",
            "lockers/ams-zuid/other",
            "stations/ams-zuid/events",
        ] {
            assert_eq!(Topic::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Topic::every(Root::Locker, Channel::Events),
            "lockers/+/events"
        );
    }
}
