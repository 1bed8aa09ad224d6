//! A real SMTP server for the tests: Debian's aiosmtpd (python3-aiosmtpd, which `.ci/run`
//! installs) on a loopback port, requiring STARTTLS with TLS 1.3 and a certificate generated
//! here, writing what it accepts to a Maildir that the test reads back and parses.

use anyhow::Context;
use mail_parser::MimeHeaders;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const SERVE: &str = include_str!("mail/serve.py");
/// Where Debian's python finds aiosmtpd.
const PYTHON: &str = "/usr/bin/python3";

/// One accepted e-mail, parsed.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The file it was written to.
    pub file: PathBuf,
    /// `Message-ID`, without the angle brackets.
    pub message_id: String,
    /// `To`, the address alone.
    pub to: String,
    /// `Subject`.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// Inline images: content id and bytes.
    pub images: Vec<(String, Vec<u8>)>,
}

/// The running server.
pub struct MailServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl MailServer {
    /// Generates a CA and a certificate for `localhost`, then starts aiosmtpd.
    pub async fn start() -> anyhow::Result<MailServer> {
        let dir = tempfile::tempdir()?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "lockergrid test mail CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = leaf.signed_by(&key, &issuer)?;
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem())?;
        std::fs::write(dir.path().join("cert.pem"), cert.pem())?;
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem())?;
        let mut server = MailServer {
            child: None,
            port: 0,
            dir,
        };
        server.port = server.serve(0).await?;
        Ok(server)
    }

    async fn serve(&mut self, port: u16) -> anyhow::Result<u16> {
        let dir = self.dir.path();
        let mut child = Command::new(PYTHON)
            .arg("-c")
            .arg(SERVE)
            .arg("--maildir")
            .arg(dir.join("maildir"))
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .arg("--port")
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start aiosmtpd (install python3-aiosmtpd)")?;
        let stdout = child.stdout.take().context("aiosmtpd's stdout")?;
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .context("aiosmtpd did not say its port")??;
        self.child = Some(child);
        anyhow::ensure!(
            !line.is_empty(),
            "aiosmtpd did not start: is python3-aiosmtpd installed? (.ci/run installs it)"
        );
        line.trim()
            .parse()
            .with_context(|| format!("aiosmtpd said {line:?}, not a port"))
    }

    /// Its port on 127.0.0.1; its certificate is for `localhost`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA its certificate chains to, PEM.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The `[notifications.email]` section that sends through it.
    pub fn config(&self) -> String {
        format!(
            "[notifications.email]\nhost = \"localhost\"\nport = {}\ntls = \"starttls\"\n\
             ca_file = {:?}\nfrom = \"Lockergrid <lockers@lockergrid.test>\"\n",
            self.port,
            self.ca_file()
        )
    }

    /// Stops it: connections are refused until [`MailServer::resume`].
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts it again on the same port, with the mail it already has.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let port = self.serve(self.port).await?;
        anyhow::ensure!(port == self.port, "resumed on {port}, not {}", self.port);
        Ok(())
    }

    /// How many e-mails it has accepted, without parsing them.
    pub fn count(&self) -> anyhow::Result<usize> {
        Ok(self.files()?.len())
    }

    /// When the newest e-mail was written, once there are at least `n`.
    pub fn newest(&self, n: usize) -> anyhow::Result<Option<std::time::SystemTime>> {
        let files = self.files()?;
        Ok((files.len() >= n)
            .then(|| files.last().map(|(at, _)| *at))
            .flatten())
    }

    /// The Maildir's files with when each was written, oldest first.
    fn files(&self) -> anyhow::Result<Vec<(std::time::SystemTime, PathBuf)>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let path = self.dir.path().join("maildir").join(sub);
            if let Ok(entries) = std::fs::read_dir(&path) {
                for entry in entries {
                    let entry = entry?;
                    files.push((entry.metadata()?.modified()?, entry.path()));
                }
            }
        }
        files.sort();
        Ok(files)
    }

    /// Every e-mail accepted so far, in the order the files were written.
    pub fn mails(&self) -> anyhow::Result<Vec<Mail>> {
        self.files()?.into_iter().map(|(_, f)| parse(&f)).collect()
    }

    /// Waits until `done` holds for the mail accepted so far.
    pub async fn until(&self, done: impl Fn(&[Mail]) -> bool) -> anyhow::Result<Vec<Mail>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.mails()?;
            if done(&mails) {
                return Ok(mails);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the mail never got there: {} messages",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn parse(file: &Path) -> anyhow::Result<Mail> {
    let raw = std::fs::read(file)?;
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .with_context(|| format!("{file:?} is not an e-mail"))?;
    let to = message
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_owned();
    let images = message
        .attachments()
        .filter_map(|part| {
            let id = part.content_id()?.to_owned();
            Some((id, part.contents().to_vec()))
        })
        .collect();
    Ok(Mail {
        file: file.to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        to,
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        images,
    })
}
