//! Notifications delivered over real channels: e-mail through a real SMTP server (aiosmtpd,
//! STARTTLS with TLS 1.3), SMS through a stand-in that speaks Twilio's Messages API and posts
//! signed status callbacks, and the customer app's webhooks verified by the Standard Webhooks
//! library. The code reaches the customer alone, opens the compartment at the keypad and as a
//! QR code at the reader; failures fall back along the plan, end as dead letters that an
//! operator re-queues, and a permanent failure is not retried.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::mail::{Mail, MailServer};
use lockergrid_tests::sms::{INVALID_NUMBER, SmsProvider};
use lockergrid_tests::{Deployment, Running, files_containing, small_parcel};
use serde_json::{Value, json};
use std::time::Duration;

const EMAIL: &str = "kim.customer@example.com";
const PHONE: &str = "+31612345678";

/// Quiet hours around the current minute (the test region is on UTC): the router sends the
/// e-mail first and holds the SMS back as its fallback.
fn quiet_now() -> [u32; 2] {
    let minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60 % 1_440) as u32;
    [(minute + 1_440 - 60) % 1_440, (minute + 60) % 1_440]
}

/// Reserves at `st-a` for a recipient reached at `contact` over `channels`, deposits through the
/// door, and answers the parcel's id.
async fn deliver_parcel(
    d: &Running,
    key: &str,
    channels: Value,
    contact: Value,
) -> anyhow::Result<String> {
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let body = json!({
        "order_id": format!("order-{key}"),
        "parcel": small_parcel(),
        "tier": "standard",
        "station_id": "st-a",
        "recipient": { "id": format!("cust-{key}"), "channels": channels,
                       "quiet_hours": quiet_now(), "contact": contact },
    });
    let (status, r) = d
        .send(
            d.http
                .post(format!("{}/v1/reservations", d.base))
                .bearer_auth(&checkout)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await?;
    anyhow::ensure!(status == 201, "{status} {r}");
    let (status, deposit) = d
        .deposit(&agent, r["id"].as_str().unwrap_or_default())
        .await?;
    anyhow::ensure!(status == 200, "{status} {deposit}");
    anyhow::ensure!(deposit.get("pickup_code").is_none(), "{deposit}");
    Ok(deposit["parcel_id"].as_str().unwrap_or_default().to_owned())
}

/// The operator's view of the messages about `parcel`, once `done` holds for them.
async fn messages_until(
    d: &Running,
    parcel: &str,
    done: impl Fn(&[Value]) -> bool,
) -> anyhow::Result<Vec<Value>> {
    let operator = d.token("ops", Role::Operator, &[])?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, page) = d
            .send(
                d.http
                    .get(format!("{}/v1/admin/notifications?limit=1000", d.base))
                    .bearer_auth(&operator),
            )
            .await?;
        anyhow::ensure!(status == 200, "{status} {page}");
        let ours: Vec<Value> = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["about"]["parcel"] == parcel)
            .cloned()
            .collect();
        if done(&ours) {
            return Ok(ours);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the messages never got there: {ours:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn stored(messages: &[Value]) -> Option<&Value> {
    messages.iter().find(|m| m["event"] == "parcel_stored")
}

fn status_is(messages: &[Value], status: &str) -> bool {
    stored(messages).is_some_and(|m| m["delivery"]["status"] == status)
}

/// The 8-digit code an e-mail's text carries.
fn code_in(mail: &Mail) -> Option<String> {
    let at = mail.text.find("code: ")? + "code: ".len();
    let code = mail.text.get(at..at + 8)?;
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| code.to_owned())
}

/// The 8-digit code an SMS carries.
fn sms_code(text: &str) -> Option<String> {
    let at = text.find("Code ")? + "Code ".len();
    let code = text.get(at..at + 8)?;
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| code.to_owned())
}

/// What the QR image says.
fn read_qr(png_bytes: &[u8]) -> anyhow::Result<String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size().unwrap_or_default()];
    let frame = reader.next_frame(&mut pixels)?;
    anyhow::ensure!(frame.color_type == png::ColorType::Grayscale, "greyscale");
    let width = frame.width as usize;
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, frame.height as usize, |x, y| {
            pixels[y * width + x]
        });
    let grids = image.detect_grids();
    let grid = grids.first().ok_or_else(|| anyhow::anyhow!("no QR code"))?;
    Ok(grid.decode()?.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_deposit_sends_one_email_whose_code_opens_the_door_as_a_qr_or_typed()
-> anyhow::Result<()> {
    let mail = MailServer::start().await?;
    let d = Deployment::new()
        .station("st-a", 8)
        .lockers(Duration::from_secs(1))
        .mail(&mail)
        .start()
        .await?;
    let parcel = deliver_parcel(&d, "m1", json!(["email"]), json!({ "email": EMAIL })).await?;
    let messages = messages_until(&d, &parcel, |m| status_is(m, "delivered")).await?;
    let message = stored(&messages).expect("stored");
    assert_eq!(message["delivery"]["channel"], "email");
    assert_eq!(message["carries_code"], false, "erased once delivered");

    let mails = mail.mails()?;
    assert_eq!(mails.len(), 1, "exactly one e-mail: {mails:?}");
    let email = &mails[0];
    assert_eq!(email.to, EMAIL);
    assert!(email.subject.contains("st-a"), "{}", email.subject);
    assert_eq!(
        email.message_id,
        format!(
            "{}.email@lockergrid.test",
            message["id"].as_str().unwrap_or_default()
        ),
        "the Message-ID is the message's idempotency key"
    );
    let code = code_in(email).expect("a code in the text");
    assert!(email.html.contains(&code) && email.html.contains("cid:code-qr"));
    let (_, qr) = email
        .images
        .iter()
        .find(|(id, _)| id == "code-qr")
        .expect("the QR image inline");
    assert_eq!(read_qr(qr)?, code, "the QR code says the code");

    // Nothing but the message holds the address or the code.
    for secret in [EMAIL, code.as_str()] {
        let found = files_containing(&d.gateway.data_dir, secret.as_bytes());
        assert!(found.is_empty(), "{secret} in {found:?}");
    }

    // The QR code at the reader opens the compartment; the parcel leaves.
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let compartment = d
        .get_until(&format!("{}/v1/parcels/{parcel}", d.base), &checkout, |p| {
            p["status"] == "stored"
        })
        .await?["compartment_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        d.locker("st-a", &format!("qr {}", read_qr(qr)?)).await?,
        "ok"
    );
    d.locker_until("st-a", |s| s["unlatched"][0] == compartment.as_str())
        .await?;
    d.open_and_close("st-a", &compartment).await?;
    d.get_until(&format!("{}/v1/parcels/{parcel}", d.base), &checkout, |p| {
        p["status"] == "picked_up"
    })
    .await?;
    assert_eq!(mail.mails()?.len(), 1, "still one e-mail");

    // The next parcel's code, typed at the keypad from the e-mail's text, opens its door too.
    let parcel = deliver_parcel(&d, "m2", json!(["email"]), json!({ "email": EMAIL })).await?;
    let mails = mail.until(|m| m.len() == 2).await?;
    let code = code_in(&mails[1]).expect("a code in the text");
    let compartment = d
        .get_until(&format!("{}/v1/parcels/{parcel}", d.base), &checkout, |p| {
            p["status"] == "stored"
        })
        .await?["compartment_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(d.locker("st-a", &format!("press {code}#")).await?, "ok");
    d.open_and_close("st-a", &compartment).await?;
    d.get_until(&format!("{}/v1/parcels/{parcel}", d.base), &checkout, |p| {
        p["status"] == "picked_up"
    })
    .await?;
    let metrics = d.metrics().await?;
    assert!(
        metrics.contains(
            r#"lockergrid_notification_attempts_total{channel="email",outcome="delivered"} 2"#
        ),
        "{metrics}"
    );
    assert!(!metrics.contains(EMAIL) && !metrics.contains(&code));
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_falls_back_to_sms_and_when_every_channel_fails_an_operator_requeues_it()
-> anyhow::Result<()> {
    let mut mail = MailServer::start().await?;
    let sms = SmsProvider::start().await?;
    let d = Deployment::new()
        .station("st-a", 8)
        .lockers(Duration::from_secs(1))
        .mail(&mail)
        .sms(&sms)
        .setting("notify-multichannel", "fallback_minutes", 0)
        .start()
        .await?;
    mail.stop().await?;
    let both = json!({ "email": EMAIL, "phone": PHONE });

    // The relay refuses connections: three tries, then the plan's SMS step; its provider's
    // callbacks (signed) report it delivered.
    let parcel = deliver_parcel(&d, "f1", json!(["email", "sms"]), both.clone()).await?;
    let messages = messages_until(&d, &parcel, |m| status_is(m, "delivered")).await?;
    let message = stored(&messages).expect("stored");
    assert_eq!(message["delivery"]["channel"], "sms");
    assert_eq!(message["delivery"]["attempts"], 4, "{message}");
    let texts = sms.texts();
    assert_eq!(texts.len(), 1);
    assert_eq!(texts[0].to, PHONE);
    let code = sms_code(&texts[0].body).expect("a code in the text");
    assert_eq!(sms.callbacks_refused(), 0);

    // A forged callback (signed with another token) is refused and moves nothing.
    let status = sms.callback(&texts[0], "failed", "not-the-token").await?;
    assert_eq!(status, 403);

    // Every channel failing: a dead letter with its reason; the operator re-queues it once the
    // relay is back, and the e-mail goes.
    sms.answer_next(&[503, 503, 503]);
    let parcel = deliver_parcel(&d, "f2", json!(["email", "sms"]), both).await?;
    let messages = messages_until(&d, &parcel, |m| status_is(m, "dead")).await?;
    let dead = stored(&messages).expect("stored");
    assert_eq!(dead["delivery"]["last_error"], "sms: http 503 (3 attempts)");
    assert_eq!(dead["delivery"]["attempts"], 6);
    let operator = d.token("ops", Role::Operator, &[])?;
    let (status, listed) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/notifications?status=dead", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        listed["messages"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    mail.resume().await?;
    let id = dead["id"].as_str().unwrap_or_default();
    let (status, requeued) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/notifications/{id}/requeue", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 200, "{requeued}");
    messages_until(&d, &parcel, |m| status_is(m, "delivered")).await?;
    let mails = mail.until(|m| !m.is_empty()).await?;
    assert_eq!(mails.len(), 1);
    assert!(
        code_in(&mails[0]).is_some_and(|c| c != code),
        "f2's own code"
    );

    // An address both channels refuse for good: one attempt each, no retry storm.
    let before = sms.attempts();
    let parcel = deliver_parcel(
        &d,
        "f3",
        json!(["email", "sms"]),
        json!({ "email": "nobody@invalid.example", "phone": INVALID_NUMBER }),
    )
    .await?;
    let messages = messages_until(&d, &parcel, |m| status_is(m, "dead")).await?;
    let dead = stored(&messages).expect("stored");
    assert_eq!(dead["delivery"]["attempts"], 2, "{dead}");
    assert_eq!(dead["delivery"]["last_error"], "sms: http 400");
    assert_eq!(sms.attempts() - before, 1);
    assert_eq!(mail.mails()?.len(), 1);
    d.stop().await
}

#[tokio::test]
async fn the_customer_app_gets_signed_webhooks_retried_under_one_id_and_a_410_disables_it()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 8)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    // Two failures, then the app takes it: one message id throughout.
    d.app.answer_next(&[503, 429]);
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let (status, r) = d.reserve(&checkout, "w1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    let (status, deposit) = d
        .deposit(&agent, r["id"].as_str().unwrap_or_default())
        .await?;
    assert_eq!(status, 200, "{deposit}");
    let parcel = deposit["parcel_id"].as_str().unwrap_or_default();
    let code = d.pickup_code(parcel).await?;
    let hooks: Vec<_> = d
        .app
        .hooks()
        .into_iter()
        .filter(|h| h.body["data"]["parcel_id"] == parcel)
        .collect();
    assert_eq!(
        hooks.iter().map(|h| h.status).collect::<Vec<_>>(),
        [503, 429, 200]
    );
    assert!(hooks.iter().all(|h| h.id == hooks[0].id), "{hooks:?}");
    assert_eq!(hooks[0].body["type"], "parcel.stored");
    assert_eq!(hooks[0].body["data"]["code"], code.as_str());
    assert_eq!(d.app.bad_signatures(), 0);

    // The app says the endpoint is gone: not sent again, the message is a dead letter.
    d.app.answer_next(&[410]);
    let (status, reissued) = d
        .send(
            d.http
                .post(format!("{}/v1/parcels/{parcel}/code", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 202, "{reissued}");
    let messages = messages_until(&d, parcel, |m| {
        m.iter()
            .any(|m| m["id"] == reissued["message_id"] && m["delivery"]["status"] == "dead")
    })
    .await?;
    let dead = messages
        .iter()
        .find(|m| m["id"] == reissued["message_id"])
        .expect("the new message");
    assert_eq!(dead["delivery"]["attempts"], 1, "{dead}");
    d.stop().await
}
