//! Parsing XML API envelopes (docs/architecture.md, protected APIs), the first step of every `/XMLAPI` request.
//!
//! `cargo bench -p grantry-core --bench xmlapi`

#![allow(clippy::expect_used, reason = "a benchmark stops at its first failure")]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use grantry_core::platform::xmlapi;

const GET_LISTS: &str =
    "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>";

const ADD_RECIPIENT: &str = "<Envelope><Body><AddRecipient><LIST_ID>42</LIST_ID>\
    <CREATED_FROM>1</CREATED_FROM><UPDATE_IF_FOUND>true</UPDATE_IF_FOUND>\
    <COLUMN><NAME>EMAIL</NAME><VALUE>ann@example.com</VALUE></COLUMN>\
    <COLUMN><NAME>First Name</NAME><VALUE>Ann &amp; Co</VALUE></COLUMN>\
    <COLUMN><NAME>Last Name</NAME><VALUE>Example</VALUE></COLUMN>\
    <COLUMN><NAME>City</NAME><VALUE><![CDATA[Zürich]]></VALUE></COLUMN>\
    </AddRecipient></Body></Envelope>";

fn parse(c: &mut Criterion) {
    for (name, body) in [("GetLists", GET_LISTS), ("AddRecipient", ADD_RECIPIENT)] {
        let request = xmlapi::parse(body.as_bytes()).expect("a valid envelope");
        assert_eq!(request.op, name);
    }
    let mut g = c.benchmark_group("xmlapi::parse");
    for (name, body) in [("GetLists", GET_LISTS), ("AddRecipient", ADD_RECIPIENT)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| xmlapi::parse(black_box(body.as_bytes())))
        });
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
