#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Field seal/open and data-key unwrap, per operation.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use derbes_vault::Keyring;

fn bench(c: &mut Criterion) {
    let ring = Keyring::ephemeral();
    let (key, wrapped) = ring
        .new_data_key("0190b7e2-6f4c-7abc-8def-0123456789ab")
        .unwrap();
    let subject = "0190b7e2-6f4c-7abc-8def-0123456789ab";
    let value = "Нурлан Серикович Абдрахманов".as_bytes();
    let sealed = key.seal(subject, "full_name.surname", value).unwrap();
    let mut g = c.benchmark_group("field");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal", |b| {
        b.iter(|| {
            key.seal(black_box(subject), "full_name.surname", black_box(value))
                .unwrap()
        })
    });
    g.bench_function("open", |b| {
        b.iter(|| {
            key.open(black_box(subject), "full_name.surname", black_box(&sealed))
                .unwrap()
        })
    });
    g.bench_function("unwrap_data_key", |b| {
        b.iter(|| {
            ring.unwrap_key(black_box(subject), black_box(&wrapped))
                .unwrap()
        })
    });
    g.bench_function("unwrap_and_open", |b| {
        b.iter(|| {
            let k = ring
                .unwrap_key(black_box(subject), black_box(&wrapped))
                .unwrap();
            k.open(subject, "full_name.surname", &sealed).unwrap()
        })
    });
    g.bench_function("blind_index", |b| {
        b.iter(|| ring.blind_index("iin", black_box("871008401427")))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
