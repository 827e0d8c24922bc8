//! Packet identifiers of one connection's unacknowledged QoS 1 PUBLISHes, and when each was sent.
//!
//! Pure bookkeeping, no I/O: [`PacketIds::allocate`] hands out the next free id (1 to 65535,
//! wrapping around and skipping ids still in flight) while fewer than the window are
//! outstanding, and [`PacketIds::ack`] releases an id when its PUBACK arrives, returning what was
//! recorded at send time. A PUBACK for an id that is not in flight (a duplicate, or one the
//! server made up) is reported as `None` and releases nothing, so a message only ever counts as
//! acknowledged by the PUBACK that carries its own id.

/// What is recorded for each message in flight: its send time in microseconds since the run
/// started, and whether it counts towards the measurement (published after the warm-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Microseconds since the start of the run.
    pub(crate) at_us: u64,
    /// Published inside the measured window.
    pub(crate) counted: bool,
}

/// Bit marking a slot as in flight.
const IN_FLIGHT: u64 = 1 << 63;
/// Bit marking a counted message.
const COUNTED: u64 = 1 << 62;
/// The send time bits.
const TIME_MASK: u64 = COUNTED - 1;

/// The packet ids in flight on one connection.
#[derive(Debug)]
pub(crate) struct PacketIds {
    /// One slot per packet id (index 0 unused): 0 when free, else flags and the send time.
    slots: Box<[u64]>,
    /// The id the next search starts at.
    cursor: u16,
    /// Ids in flight.
    in_flight: usize,
    /// Most ids in flight at once.
    window: usize,
}

impl PacketIds {
    /// Tracking for at most `window` unacknowledged messages (1 to 65535).
    ///
    /// # Panics
    ///
    /// If `window` is 0 or larger than 65535 (the MQTT packet id space).
    pub(crate) fn new(window: u16) -> Self {
        assert!(window > 0, "an in-flight window of 0 can send nothing");
        PacketIds {
            slots: vec![0; usize::from(u16::MAX) + 1].into_boxed_slice(),
            cursor: 1,
            in_flight: 0,
            window: usize::from(window),
        }
    }

    /// Messages sent and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Room left in the window.
    pub(crate) fn free(&self) -> usize {
        self.window - self.in_flight
    }

    /// The window.
    pub(crate) fn window(&self) -> usize {
        self.window
    }

    /// Whether the window has room for another message.
    pub(crate) fn has_room(&self) -> bool {
        self.in_flight < self.window
    }

    /// Takes the next free packet id for a message sent at `sent`, or `None` when the window is
    /// full.
    pub(crate) fn allocate(&mut self, sent: Sent) -> Option<u16> {
        if !self.has_room() {
            return None;
        }
        // The window is at most 65535 and at least one id is free, so this finds one; with acks
        // arriving in order it is always the first id tried.
        loop {
            let id = self.cursor;
            self.cursor = if id == u16::MAX { 1 } else { id + 1 };
            let slot = &mut self.slots[usize::from(id)];
            if *slot == 0 {
                *slot =
                    IN_FLIGHT | if sent.counted { COUNTED } else { 0 } | (sent.at_us & TIME_MASK);
                self.in_flight += 1;
                return Some(id);
            }
        }
    }

    /// Releases `id` on its PUBACK; `None` if `id` is not in flight.
    pub(crate) fn ack(&mut self, id: u16) -> Option<Sent> {
        let slot = self.slots.get_mut(usize::from(id)).filter(|_| id != 0)?;
        if *slot & IN_FLIGHT == 0 {
            return None;
        }
        let sent = Sent {
            at_us: *slot & TIME_MASK,
            counted: *slot & COUNTED != 0,
        };
        *slot = 0;
        self.in_flight -= 1;
        Some(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(at_us: u64) -> Sent {
        Sent {
            at_us,
            counted: at_us.is_multiple_of(2),
        }
    }

    #[test]
    fn ids_start_at_one_and_the_window_bounds_what_is_in_flight() {
        let mut ids = PacketIds::new(3);
        assert_eq!(ids.allocate(sent(10)), Some(1));
        assert_eq!(ids.allocate(sent(11)), Some(2));
        assert_eq!(ids.allocate(sent(12)), Some(3));
        assert_eq!(ids.allocate(sent(13)), None);
        assert_eq!(ids.in_flight(), 3);
        assert_eq!(ids.ack(2), Some(sent(11)));
        assert_eq!(ids.allocate(sent(14)), Some(4));
    }

    #[test]
    fn only_the_matching_id_acknowledges_and_only_once() {
        let mut ids = PacketIds::new(10);
        let id = ids.allocate(sent(7)).unwrap();
        assert_eq!(ids.ack(0), None);
        assert_eq!(ids.ack(id + 1), None);
        assert_eq!(ids.ack(id), Some(sent(7)));
        assert_eq!(ids.ack(id), None, "a duplicate PUBACK acknowledges nothing");
        assert_eq!(ids.in_flight(), 0);
    }

    #[test]
    fn ids_wrap_around_past_65535_and_skip_ids_still_in_flight() {
        let mut ids = PacketIds::new(1000);
        // Keep id 1 and id 2 outstanding while the counter goes round.
        assert_eq!(ids.allocate(sent(0)), Some(1));
        assert_eq!(ids.allocate(sent(0)), Some(2));
        for expected in 3..=u16::MAX {
            let id = ids.allocate(sent(1)).unwrap();
            assert_eq!(id, expected);
            assert_eq!(ids.ack(id), Some(sent(1)));
        }
        // 1 and 2 are still in flight: the next free id is 3.
        assert_eq!(ids.allocate(sent(2)), Some(3));
        assert_eq!(ids.ack(1), Some(sent(0)));
        assert_eq!(ids.allocate(sent(2)), Some(4));
        assert_eq!(ids.in_flight(), 3);
    }

    #[test]
    fn the_full_id_space_can_be_in_flight() {
        let mut ids = PacketIds::new(u16::MAX);
        for expected in 1..=u16::MAX {
            assert_eq!(ids.allocate(sent(4)), Some(expected));
        }
        assert_eq!(ids.allocate(sent(4)), None);
        assert_eq!(ids.ack(500), Some(sent(4)));
        assert_eq!(ids.allocate(sent(6)), Some(500));
    }

    #[test]
    fn send_times_and_the_counted_flag_survive_the_round_trip() {
        let mut ids = PacketIds::new(2);
        let big = (1 << 40) + 12_345;
        let a = ids
            .allocate(Sent {
                at_us: big,
                counted: true,
            })
            .unwrap();
        let b = ids
            .allocate(Sent {
                at_us: 5,
                counted: false,
            })
            .unwrap();
        assert_eq!(
            ids.ack(b),
            Some(Sent {
                at_us: 5,
                counted: false
            })
        );
        assert_eq!(
            ids.ack(a),
            Some(Sent {
                at_us: big,
                counted: true
            })
        );
    }
}
