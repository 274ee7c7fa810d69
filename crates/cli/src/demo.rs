//! `zeroguard demo`: the main job in one self-contained run on loopback —
//! a CURVE service that admits one client key and refuses another,
//! request/reply and publish/subscribe over it, and the monitor events.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use zeroguard::{
    AuthContext, AuthDecision, Context, Credentials, CurveKeyPair, Monitor, MonitorEvent, Pub, Rep,
    Req, Security, Socket, SocketOptions, Sub,
};

use crate::text;
use crate::Failure;

fn show_events(name: &str, monitor: &Monitor) {
    while let Some(event) = monitor.try_recv() {
        println!("  [{name}] event: {event}");
    }
}

fn options(security: Security) -> SocketOptions {
    SocketOptions {
        security,
        recv_timeout: Some(Duration::from_secs(5)),
        send_timeout: Some(Duration::from_secs(5)),
        ..SocketOptions::default()
    }
}

fn short(key: &CurveKeyPair) -> String {
    key.public_z85().chars().take(10).collect()
}

pub(crate) fn run() -> Result<(), Failure> {
    let fail = Failure::runtime;
    let ctx = Context::new().map_err(fail)?;
    let server_keys = CurveKeyPair::generate();
    let alice = CurveKeyPair::generate();
    let mallory = CurveKeyPair::generate();
    let admitted = *alice.public();
    // The service's authenticator: Alice's key only. (A CURVE server cannot
    // be built without one; "admit anyone" has to be asked for by name.)
    let authenticator = move |peer: &AuthContext| match &peer.credentials {
        Credentials::Curve { public_key } if *public_key == admitted => AuthDecision::accept(),
        _ => AuthDecision::refuse("key not admitted"),
    };
    println!("== keys");
    println!(
        "  server {}...  alice {}... (admitted)  mallory {}... (not admitted)",
        short(&server_keys),
        short(&alice),
        short(&mallory)
    );

    println!("== request/reply over CURVE on tcp://127.0.0.1");
    let service = Socket::<Rep>::with_options(
        &ctx,
        options(Security::curve_server(server_keys.clone(), authenticator)),
    )
    .map_err(fail)?;
    let service_events = service.monitor();
    let endpoint = service.bind("tcp://127.0.0.1:0").map_err(fail)?;
    println!("  service bound to {endpoint}");
    let client = Socket::<Req>::with_options(
        &ctx,
        options(Security::curve_client(alice.clone(), *server_keys.public())),
    )
    .map_err(fail)?;
    client.connect(&endpoint).map_err(fail)?;
    for i in 1..=3 {
        client
            .send(format!("request {i}").into_bytes())
            .map_err(fail)?;
        let request = service.recv().map_err(fail)?;
        let mut reply = b"reply to ".to_vec();
        reply.extend_from_slice(&request.frames()[0]);
        service.send(reply).map_err(fail)?;
        println!(
            "  alice got: {}",
            text::encode(&client.recv().map_err(fail)?)
        );
    }

    println!("== an unknown key is refused before any data flows");
    let intruder = Socket::<Req>::with_options(
        &ctx,
        options(Security::curve_client(mallory, *server_keys.public())),
    )
    .map_err(fail)?;
    let intruder_events = intruder.monitor();
    intruder.connect(&endpoint).map_err(fail)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        match intruder_events.recv(Some(Duration::from_millis(100))) {
            Some(MonitorEvent::HandshakeFailed {
                category, detail, ..
            }) => break format!("{category}: {detail}"),
            Some(_) => {}
            None if Instant::now() > deadline => {
                return Err(Failure::runtime(
                    "the unknown key was not refused within 5 s",
                ))
            }
            None => {}
        }
    };
    println!("  mallory's handshake failed ({refused})");
    if intruder.try_send("let me in").is_ok() {
        return Err(Failure::runtime("a refused client could queue a message"));
    }
    intruder.close();
    show_events("service", &service_events);

    println!("== publish/subscribe over CURVE: each subscriber gets only its topics");
    let publisher = Socket::<Pub>::with_options(
        &ctx,
        options(Security::curve_server(server_keys.clone(), {
            let admitted = *alice.public();
            move |peer: &AuthContext| match &peer.credentials {
                Credentials::Curve { public_key } if *public_key == admitted => {
                    AuthDecision::accept()
                }
                _ => AuthDecision::refuse("key not admitted"),
            }
        })),
    )
    .map_err(fail)?;
    let pub_endpoint = publisher.bind("tcp://127.0.0.1:0").map_err(fail)?;
    let subscriber = |topic: &str| -> Result<Socket<Sub>, Failure> {
        let s = Socket::<Sub>::with_options(
            &ctx,
            options(Security::curve_client(alice.clone(), *server_keys.public())),
        )
        .map_err(fail)?;
        s.subscribe(topic).map_err(fail)?;
        s.connect(&pub_endpoint).map_err(fail)?;
        Ok(s)
    };
    let (weather, news) = (subscriber("weather")?, subscriber("news")?);
    // Subscriptions reach the publisher shortly after the handshake; publish until both heard one.
    let (mut got_weather, mut got_news) = (None, None);
    for round in 0..500 {
        publisher
            .send(format!("weather sunny #{round}").into_bytes())
            .map_err(fail)?;
        publisher
            .send(format!("news calm #{round}").into_bytes())
            .map_err(fail)?;
        std::thread::sleep(Duration::from_millis(10));
        got_weather = got_weather.or(weather.try_recv().map_err(fail)?);
        got_news = got_news.or(news.try_recv().map_err(fail)?);
        if got_weather.is_some() && got_news.is_some() {
            break;
        }
    }
    let (Some(w), Some(n)) = (got_weather, got_news) else {
        return Err(Failure::runtime(
            "subscribers did not receive their topics within 5 s",
        ));
    };
    println!("  weather subscriber got: {}", text::encode(&w));
    println!("  news subscriber got:    {}", text::encode(&n));
    println!(
        "  messages dropped for full subscribers: {}",
        publisher.statistics().dropped_full.load(Ordering::Relaxed)
    );

    println!("== secure defaults");
    let probe = Socket::<Rep>::new(&ctx).map_err(fail)?;
    match probe.bind("tcp://0.0.0.0:0") {
        Err(e) => println!("  NULL on a network address is refused: {e}"),
        Ok(ep) => {
            return Err(Failure::runtime(format!(
                "cleartext bind on {ep} was allowed"
            )))
        }
    }
    println!("demo finished: all steps succeeded");
    Ok(())
}
