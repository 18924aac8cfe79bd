//! The per-request primitives of the token paths: minting, deriving and digesting a
//! credential, and finding a digest among 1,000,000 (the in-memory analogue of the token
//! cache).
//!
//! `cargo bench -p grantry-core --bench credentials`

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use grantry_core::credential::{self, Digest, Kind};
use secrecy::ExposeSecret;

const POD: &str = "p1";
const LIVE_TOKENS: usize = 1_000_000;

fn minting(c: &mut Criterion) {
    let mut g = c.benchmark_group("credential");
    g.throughput(Throughput::Elements(1));
    g.bench_function("mint access token", |b| {
        b.iter(|| credential::mint(black_box(Kind::AccessToken), black_box(POD)))
    });
    let refresh = credential::mint(Kind::RefreshToken, POD);
    let refresh = refresh.value.expose_secret();
    let nonce = credential::nonce();
    g.bench_function("derive_access_token", |b| {
        b.iter(|| {
            credential::derive_access_token(black_box(POD), black_box(refresh), black_box(&nonce))
        })
    });
    let token = credential::mint(Kind::AccessToken, POD);
    let token = token.value.expose_secret();
    g.bench_function("Digest::of access token", |b| {
        b.iter(|| Digest::of(black_box(token)))
    });
    g.bench_function("nonce", |b| b.iter(credential::nonce));
    g.finish();
}

/// Digests as the server sees them: SHA-256 of distinct tokens, so their bytes (and the
/// map's buckets) are spread like the real ones.
fn digests(n: usize) -> Vec<Digest> {
    (0..n).map(|i| Digest::of(&token_string(i))).collect()
}

/// The `i`-th live token: the shape of a real one (`gat_<pod>_` and 43 characters).
fn token_string(i: usize) -> String {
    format!("gat_{POD}_{i:043}")
}

fn lookup(c: &mut Criterion) {
    let live = digests(LIVE_TOKENS);
    let map: HashMap<Digest, u64> = live
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, i as u64))
        .collect();
    let absent: Vec<Digest> = (0..4096)
        .map(|i| Digest::of(&format!("gat_{POD}_absent{i:037}")))
        .collect();

    let mut g = c.benchmark_group("digest lookup, 1,000,000 live");
    g.throughput(Throughput::Elements(1));
    // A large odd stride walks every key in an order unrelated to the map's layout, so most
    // lookups miss the CPU caches as they would under real traffic.
    let mut i = 0usize;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 7_919) % LIVE_TOKENS;
            map.get(black_box(&live[i]))
        })
    });
    let mut j = 0usize;
    g.bench_function("miss", |b| {
        b.iter(|| {
            j = (j + 1) % absent.len();
            map.get(black_box(&absent[j]))
        })
    });
    // The whole cache probe of a request: digest the presented token, then look it up.
    let presented: Vec<String> = (0..65_536)
        .map(|k| token_string((k * 7_919) % LIVE_TOKENS))
        .collect();
    let mut k = 0usize;
    g.bench_function("Digest::of + hit", |b| {
        b.iter(|| {
            k = (k + 1) % presented.len();
            map.get(&Digest::of(black_box(&presented[k])))
        })
    });
    g.finish();
}

criterion_group!(benches, minting, lookup);
criterion_main!(benches);
