//! Who a user-driven event comes from: the user drawn for it, and their
//! host, session and address, stable per user.

use std::net::{IpAddr, Ipv4Addr};

use rand::Rng;

use super::EventWriter;
use super::draws::{ipv6, pct, pick, public_v4, skewed};
use super::pieces::{Ctx, Ev, Host, User};
use super::vocab::Role;
use crate::text::{HOUR_MS, mix};

impl EventWriter {
    pub(super) fn pick_user(&mut self, tenant: u32, roles: &[(Role, u32)]) -> User {
        let role = pick(&mut self.rng, roles);
        let pool = self.tenants[tenant as usize].pools[role as usize];
        User {
            role,
            idx: skewed(&mut self.rng, pool),
        }
    }

    /// Address a user's events come from: stable per user (office network of
    /// the tenant, or a public address when remote), ~5 % IPv6.
    fn user_ip(&mut self, tenant: u32, user: User, remote: bool) -> IpAddr {
        let h = user.key(self.seed, tenant);
        if pct(&mut self.rng, 5) {
            return ipv6(h);
        }
        if remote {
            return public_v4(h);
        }
        let (x, y) = ((h >> 8) as u8, ((h >> 16) % 254 + 1) as u8);
        let t = self.tenants[tenant as usize].net;
        IpAddr::V4(match t {
            0 => Ipv4Addr::new(10, (tenant % 250 + 1) as u8, x, y),
            1 => Ipv4Addr::new(172, 16 + (tenant % 16) as u8, x, y),
            _ => Ipv4Addr::new(192, 168, x, y),
        })
    }

    /// Random address on the internet (attackers, partners).
    pub(super) fn random_public_ip(&mut self) -> IpAddr {
        let h: u64 = self.rng.random();
        if pct(&mut self.rng, 5) {
            ipv6(h)
        } else {
            public_v4(h)
        }
    }

    /// Session id: stable for a user within a four-hour block.
    fn session_for(&self, tenant: u32, user: User, ts: i64) -> u64 {
        let block = ts.div_euclid(4 * HOUR_MS) as u64;
        mix(user.key(self.seed, tenant) ^ block.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Workstation of a user (stable), or a batch server for service accounts.
    fn user_host(&self, tenant: u32, user: User) -> Host {
        let h = user.key(self.seed, tenant);
        if user.role == Role::Service {
            Host::Server("batch", (h % 6 + 1) as u32)
        } else {
            Host::Workstation((h >> 40) as u32 % 4000)
        }
    }

    /// Fills in actor, host, session and address for a user-driven event.
    pub(super) fn actor(
        &mut self,
        ev: &mut Ev,
        ctx: Ctx,
        roles: &[(Role, u32)],
        remote_pct: u32,
    ) -> User {
        let user = self.pick_user(ev.tenant, roles);
        ev.user = Some(user);
        ev.host = Some(self.user_host(ev.tenant, user));
        if user.role != Role::Service {
            ev.session = Some(self.session_for(ev.tenant, user, ctx.ts));
        }
        let remote = pct(&mut self.rng, remote_pct);
        ev.ip = Some(self.user_ip(ev.tenant, user, remote));
        user
    }
}
