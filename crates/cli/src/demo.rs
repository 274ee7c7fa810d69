//! `zeroguard demo`: the main job in one self-contained run on loopback.

use std::time::Duration;

use zeroguard::{Context, Monitor, Pub, Rep, Req, Socket, SocketOptions, Sub};

use crate::text;
use crate::Failure;

fn show_events(name: &str, monitor: &Monitor) {
    while let Some(event) = monitor.try_recv() {
        println!("  [{name}] event: {event}");
    }
}

pub(crate) fn run() -> Result<(), Failure> {
    let fail = Failure::runtime;
    let ctx = Context::new().map_err(fail)?;
    let timeouts = SocketOptions {
        recv_timeout: Some(Duration::from_secs(5)),
        send_timeout: Some(Duration::from_secs(5)),
        ..SocketOptions::default()
    };

    println!("== request/reply over tcp://127.0.0.1 (NULL security, loopback only)");
    let server = Socket::<Rep>::with_options(&ctx, timeouts.clone()).map_err(fail)?;
    let server_events = server.monitor();
    let endpoint = server.bind("tcp://127.0.0.1:0").map_err(fail)?;
    println!("  server bound to {endpoint}");
    let client = Socket::<Req>::with_options(&ctx, timeouts.clone()).map_err(fail)?;
    let client_events = client.monitor();
    client.connect(&endpoint).map_err(fail)?;
    for i in 1..=3 {
        client
            .send(format!("request {i}").into_bytes())
            .map_err(fail)?;
        let request = server.recv().map_err(fail)?;
        let mut reply = b"reply to ".to_vec();
        reply.extend_from_slice(&request.frames()[0]);
        server.send(reply).map_err(fail)?;
        let reply = client.recv().map_err(fail)?;
        println!("  client got: {}", text::encode(&reply));
    }
    show_events("server", &server_events);
    show_events("client", &client_events);

    println!("== publish/subscribe: each subscriber gets only its topics");
    let publisher = Socket::<Pub>::with_options(&ctx, timeouts.clone()).map_err(fail)?;
    let pub_endpoint = publisher.bind("tcp://127.0.0.1:0").map_err(fail)?;
    let weather = Socket::<Sub>::with_options(&ctx, timeouts.clone()).map_err(fail)?;
    let news = Socket::<Sub>::with_options(&ctx, timeouts).map_err(fail)?;
    weather.subscribe("weather").map_err(fail)?;
    news.subscribe("news").map_err(fail)?;
    weather.connect(&pub_endpoint).map_err(fail)?;
    news.connect(&pub_endpoint).map_err(fail)?;
    // Subscriptions reach the publisher shortly after connecting; publish until both heard one.
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
    let leaked = weather
        .try_recv()
        .map_err(fail)?
        .filter(|m| !m.frames()[0].starts_with(b"weather"));
    if leaked.is_some() {
        return Err(Failure::runtime(
            "a subscriber received a topic it did not subscribe to",
        ));
    }
    println!(
        "  publisher drops for full subscribers: {}",
        publisher
            .statistics()
            .dropped_full
            .load(std::sync::atomic::Ordering::Relaxed)
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
